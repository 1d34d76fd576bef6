"""The labelled pictures a model of a renderer-less world trains and is scored on.

A world without a renderer (``World.has_renderer`` False, e.g.
``morphomnist``) has no grid to resample: training reads its labelled files
(``World.data``). Rows are split by index: the held-out test rows, the last eighth
(``morphomnist``: 7000-7999, its :data:`cvaeq.worlds.morphomnist.TEST_ROWS`),
are never trained on; training reads the rows before them.

This module holds a small private reader of the Morpho-MNIST layout (IDX
images and labels, gzipped or not, and ``*-morpho.csv``), bounded by the
sizes the headers declare. It is a stand-in: the shared labelled-file loader
(``cvaeq.data.labelled``, written beside this) replaces :func:`_read_morpho`
when the two are merged; :func:`labelled_split` is the seam training calls.

>>> from cvaeq.world import get_world
>>> train, test = labelled_split(get_world("morphomnist"), n_train=5, n_test=3)
>>> train[0].shape, train[0].dtype, train[1].shape, train[1].dtype
((5, 28, 28), dtype('uint8'), (5, 3), dtype('float64'))
>>> test[1][:, 0].tolist()  # the digits of rows 7000-7002
[1.0, 2.0, 2.0]
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["labelled_split", "held_out_rows", "LabelledBatches"]

#: Largest labelled set read (the full Morpho-MNIST training set has 60,000 rows).
MAX_ROWS = 100_000


def held_out_rows(n_rows: int) -> range:
    """The held-out test rows of ``n_rows`` labelled pictures: the last eighth.

    For the shipped Morpho-MNIST digits (8,000 rows) that is rows 7000-7999,
    the world's declared test part (:data:`cvaeq.worlds.morphomnist.TEST_ROWS`;
    the core reads no world module, so the rule is stated here and a test
    checks the two agree).

    >>> held_out_rows(8000)
    range(7000, 8000)
    """
    return range(n_rows - n_rows // 8, n_rows)


def labelled_split(
    world, n_train: int | None = None, n_test: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((images, factors), (images, factors))`` of the training and held-out rows.

    Images are uint8 ``(n, *image_shape)``; factors ``(n, F)`` in the world's
    order, float64 where it has a continuous factor, else int64 (checked by
    :meth:`~cvaeq.world.World.check_factors`). ``n_train`` and ``n_test`` keep
    the first rows of each part.
    """
    if world.data is None:
        raise DataError(f"world {world.name!r} has no labelled files (World.data); it cannot be trained on files")
    images, factors = _read_morpho(Path(world.data), world)
    test = held_out_rows(len(images))
    train_rows = np.arange(0, test.start)
    test_rows = np.arange(test.start, test.stop)
    if n_train is not None:
        train_rows = train_rows[:n_train]
    if n_test is not None:
        test_rows = test_rows[:n_test]
    return (images[train_rows], factors[train_rows]), (images[test_rows], factors[test_rows])


def _open(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return f.read(MAX_ROWS * 28 * 28 * 3 + 64)


def _find(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise DataError(f"{folder}: no file matching {pattern!r} (the Morpho-MNIST layout)")
    return found[0]


def _idx(blob: bytes, ndim: int, path: Path) -> np.ndarray:
    if len(blob) < 4 + 4 * ndim or blob[:2] != b"\0\0" or blob[2] != 0x08 or blob[3] != ndim:
        raise DataError(f"{path}: not an IDX file of uint8 with {ndim} dimension(s)")
    dims = struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim])
    if dims[0] > MAX_ROWS or len(blob) != 4 + 4 * ndim + int(np.prod(dims)):
        raise DataError(f"{path}: its header declares {dims}, which its size does not hold (or over {MAX_ROWS:,} rows)")
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _read_morpho(folder: Path, world) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W)`` and factors ``(N, 3)`` (digit, thickness, intensity) of the Morpho-MNIST layout."""
    images_path = _find(folder, "*-images-idx3-ubyte*")
    labels_path = _find(folder, "*-labels-idx1-ubyte*")
    csv_path = _find(folder, "*-morpho.csv")
    images = _idx(_open(images_path), 3, images_path)
    labels = _idx(_open(labels_path), 1, labels_path)
    table = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2, max_rows=MAX_ROWS)
    if table.shape[1] != 3 or not np.array_equal(table[:, 0], np.arange(len(table))):
        raise DataError(f"{csv_path}: expected the columns index,thickness,intensity with index 0, 1, 2, ...")
    if not len(images) == len(labels) == len(table):
        raise DataError(f"{folder}: {len(images)} images, {len(labels)} labels and {len(table)} table rows differ")
    if images.shape[1:] != tuple(world.image_shape[-2:]):
        raise DataError(f"{images_path}: pictures of {images.shape[1:]}, world {world.name!r} has {world.image_shape}")
    order = {"digit": labels.astype(np.float64), "thickness": table[:, 1], "intensity": table[:, 2]}
    factors = world.check_factors(np.stack([order[f] for f in world.names], 1))
    return images.reshape(len(images), *world.image_shape), factors


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
