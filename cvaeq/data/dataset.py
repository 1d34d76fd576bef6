"""A torch Dataset and DataLoader over (image, factor classes).

Images stay uint8 (in memory, memory-mapped, or bit-packed inside a
:class:`~cvaeq.data.files.Grid`) and become float32 only one batch at a time:
the full grid would be 12 GB as float32, 3 GB as uint8.

Batches are fetched whole (``__getitems__``), so a batch costs one fancy-index
into the uint8 array, not ``batch_size`` Python calls.

>>> import numpy as np
>>> from cvaeq.world import get_world
>>> classes = np.array([[0, 0, 0, 0, 0], [2, 5, 0, 16, 16], [1, 3, 7, 4, 9]])
>>> loader = make_loader(get_world("dsprites").render(classes), classes, batch_size=2, shuffle=True, seed=0)
>>> x, y = next(iter(loader))
>>> x.dtype, tuple(x.shape), y.dtype, tuple(y.shape)
(torch.float32, (2, 1, 64, 64), torch.int64, (2, 5))
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DataError
from .files import Grid, load_grid

__all__ = ["FactorImages", "make_loader"]


class FactorImages(Dataset):
    """Pairs ``(image, classes)``: float32 ``(C, H, W)`` in [0, 1], int64 ``(F,)``.

    Binary images become 0.0/1.0; 8-bit levels ``v`` become ``v / 255``
    (:func:`cvaeq.levels.to_unit`, exact to invert: ``round(x * 255)``).

    :param images: uint8 ``(n, H, W)`` or ``(n, C, H, W)`` array with one image per row of
        ``classes`` (a numpy memmap is fine), or a :class:`Grid` (or the path
        of a grid file), from which each row's image is looked up by the grid
        index of its classes in the grid's world (so a resampled dataset needs
        only its classes and the grid).
    :param classes: ``(n, F)`` int factor classes in the world's factor order.
    :param pixel: ``"binary"`` or ``"8bit"``, the images' pixel kind (a Grid's is its world's).
    """

    def __init__(self, images: np.ndarray | Grid | str | os.PathLike, classes: np.ndarray, pixel: str = "binary"):
        if isinstance(images, (str, os.PathLike)):
            images = load_grid(images)
        classes = np.ascontiguousarray(classes, dtype=np.int64)
        if classes.ndim != 2:
            raise DataError(f"classes must have shape (n, F), got {classes.shape}")
        if isinstance(images, Grid):
            self._rows = images.rows_of(images.world.indices_of(classes))  # checks every image exists
            self._fetch = images.rows
            pixel = images.world.pixel
        else:
            if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
                raise DataError(
                    "images must be a uint8 array (n, H, W) or a Grid; convert to float per batch, not up front"
                )
            if images.ndim not in (3, 4) or len(images) != len(classes):
                raise DataError(
                    f"images have shape {images.shape}, expected ({len(classes)}, H, W) or "
                    f"({len(classes)}, C, H, W) to match classes"
                )
            self._rows = np.arange(len(classes))
            self._fetch = images.__getitem__  # type: ignore[assignment]  # rows of the array
        if pixel not in ("binary", "8bit"):
            raise DataError(f"pixel must be 'binary' or '8bit', got {pixel!r}")
        self.classes = classes
        #: divide the uint8 values by this: 1 (0/1 pixels) or 255 (levels)
        self._scale = 255.0 if pixel == "8bit" else 1.0

    def __len__(self) -> int:
        return len(self.classes)

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(idx, dtype=np.int64)
        imgs = np.ascontiguousarray(self._fetch(self._rows[rows]))
        x = torch.from_numpy(imgs).to(torch.float32)
        if self._scale != 1.0:
            x = x / self._scale
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return x, torch.from_numpy(self.classes[rows])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([int(i)])
        return x[0], y[0]


def _batched(batch):
    """Collate for batches already built by ``__getitems__``."""
    return batch


def make_loader(
    images: np.ndarray | Grid | str | os.PathLike,
    classes: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
    pixel: str = "binary",
) -> DataLoader:
    """A DataLoader of ``(float32 (B, C, H, W), int64 (B, F))`` batches (``pixel``: :class:`FactorImages`).

    ``shuffle`` uses a generator seeded with ``seed`` (same seed, same order).
    Pass ``sampler`` to shard, e.g.
    ``DistributedSampler(range(len(classes)), seed=seed)`` (it needs only the
    length); it replaces ``shuffle`` (call its ``set_epoch`` each epoch). See :class:`FactorImages` for ``images``.
    """
    dataset = FactorImages(images, classes, pixel)
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        generator=generator,
        collate_fn=_batched,
        drop_last=drop_last,
        num_workers=num_workers,
    )
