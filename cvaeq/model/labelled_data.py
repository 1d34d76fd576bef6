"""The labelled pictures a model of a renderer-less world trains and is scored on.

A world without a renderer (``World.has_renderer`` False, e.g.
``morphomnist``) has no grid to resample: training reads its labelled files
(``World.data``) through the shared loader (:func:`cvaeq.data.labelled.load_labelled`,
bounded and checked), split by :meth:`~cvaeq.data.picture_set.LabelledPictures.split`:
the world's held-out test rows (``morphomnist``: 7000-7999) are never trained on.

>>> from cvaeq.world import get_world
>>> train, test = labelled_split(get_world("morphomnist"), n_train=5, n_test=3)
>>> train[0].shape, train[0].dtype, train[1].shape, train[1].dtype
((5, 28, 28), dtype('uint8'), (5, 3), dtype('float64'))
>>> test[1][:, 0].tolist()  # the digits of rows 7000-7002
[1.0, 2.0, 2.0]
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["labelled_split", "LabelledBatches"]


def labelled_split(
    world, n_train: int | None = None, n_test: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((images, factors), (images, factors))`` of the training and held-out rows.

    Images are uint8 ``(n, *image_shape)``; factors ``(n, F)`` in the world's
    order, float64 where it has a continuous factor, else int64 (checked by
    :meth:`~cvaeq.world.World.check_factors`). ``n_train`` and ``n_test`` keep
    the first rows of each part.
    """
    from ..data.labelled import load_labelled

    if world.data is None:
        raise DataError(f"world {world.name!r} has no labelled files (World.data); it cannot be trained on files")
    pics = load_labelled(None, world)
    train, test = pics.split("train"), pics.split("test")
    return (train.images[:n_train], train.factors[:n_train]), (test.images[:n_test], test.factors[:n_test])


class LabelledBatches:
    """Batches ``(float32 (B, C, H, W) levels / 255, (B, F) factors)`` of labelled pictures, in the
    order of a sampler (a ``DistributedSampler`` over the rows: seeded, sharded); the factors keep
    their dtype (float64 in a world with a continuous factor).

    >>> import torch
    >>> b = LabelledBatches(np.zeros((5, 4, 4), np.uint8), np.zeros((5, 2)), 2, range(5))
    >>> len(b), [tuple(x.shape) for x, _ in b]
    (2, [(2, 1, 4, 4), (2, 1, 4, 4)])
    """

    def __init__(self, images: np.ndarray, factors: np.ndarray, batch_size: int, sampler) -> None:
        self.images, self.factors = images, np.ascontiguousarray(factors)
        self.batch_size, self.sampler = batch_size, sampler

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        import torch

        rows = np.fromiter(iter(self.sampler), dtype=np.int64)
        for i in range(len(self)):
            idx = rows[i * self.batch_size : (i + 1) * self.batch_size]
            x = torch.from_numpy(self.images[idx]).to(torch.float32) / 255.0
            if x.dim() == 3:
                x = x.unsqueeze(1)
            yield x, torch.from_numpy(self.factors[idx])
