"""A set of labelled pictures: a world's real pictures and the factor values measured on each.

:class:`LabelledPictures` is what every loader of :mod:`cvaeq.data.labelled`
returns, whatever layout the files had: uint8 pictures ``(N, *image_shape)``,
their factor values ``(N, F)`` in the world's factor order (float64 when the
world has a continuous factor, with the categorical columns holding exact
whole classes; int64 classes when it has none), and each picture's row index
in its source. :meth:`LabelledPictures.split` divides them by the world's
held-out rows (:func:`held_out_mask`).

>>> import numpy as np
>>> from cvaeq.world import Factor, World
>>> w = World("toy", (Factor("a", labels=("x", "y")),), image_shape=(2, 2), test_rows=range(1, 2))
>>> pics = LabelledPictures(w, np.zeros((3, 2, 2), np.uint8), np.array([[0], [1], [1]]), np.arange(3))
>>> pics.split("test").rows.tolist(), pics.split("train").factors.tolist()
([1], [[0], [1]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..world import World

__all__ = ["LabelledPictures", "held_out_mask", "PARTS"]

#: The parts a set of labelled pictures splits into.
PARTS = ("train", "test")


def held_out_mask(world: World, rows: np.ndarray) -> np.ndarray:
    """Which ``rows`` (row indices in the source) are held out for testing.

    The world's :attr:`~cvaeq.world.World.test_rows` when it declares them;
    else the last tenth of the rows by index (at least one), so a user's own
    world has a test part without declaring one.

    >>> from cvaeq.world import get_world
    >>> held_out_mask(get_world("morphomnist"), np.array([0, 6999, 7000, 7999, 8000])).tolist()
    [False, False, True, True, False]
    """
    rows = np.asarray(rows, dtype=np.int64)
    held = world.test_rows
    if held is not None:
        return (rows >= held.start) & (rows < held.stop)
    n_test = max(1, -(-len(rows) // 10))
    order = np.argsort(rows, kind="stable")
    mask = np.zeros(len(rows), dtype=bool)
    mask[order[len(rows) - n_test :]] = True
    return mask


@dataclass(frozen=True, eq=False)
class LabelledPictures:
    """Real pictures of a world and the factor values of each.

    :param world: the world whose factors the columns are.
    :param images: uint8 ``(N, *image_shape)`` (binary worlds 0/1, 8-bit worlds 0..255).
    :param factors: ``(N, F)`` in the world's factor order: float64 when the
        world has a continuous factor (categorical columns hold whole classes),
        else int64 classes.
    :param rows: int64 ``(N,)``: each picture's row index in its source (the
        Morpho-MNIST table's ``index``, the line order of ``factors.csv``).
    :param source: where they were read from, for messages.
    :param part: ``"all"``, or the part :meth:`split` gave (``"train"``/``"test"``).
    """

    world: World
    images: np.ndarray
    factors: np.ndarray
    rows: np.ndarray
    source: str = ""
    part: str = "all"

    def __post_init__(self) -> None:
        world = self.world
        images = np.asarray(self.images)
        if images.dtype != np.uint8 or images.shape[1:] != tuple(world.image_shape):
            raise DataError(
                f"{self.source or 'pictures'}: expected uint8 pictures of shape (N, "
                f"{', '.join(map(str, world.image_shape))}), got {images.dtype} {images.shape}"
            )
        if world.pixel == "binary" and images.size and int(images.max()) > 1:
            raise DataError(f"{self.source or 'pictures'}: a binary world's pictures are 0/1, found {images.max()}")
        factors = world.check_factors(self.factors)
        rows = np.asarray(self.rows, dtype=np.int64).reshape(-1)
        if not (len(images) == len(factors) == len(rows)):
            raise DataError(
                f"{self.source or 'pictures'}: {len(images)} pictures, {len(factors)} rows of factors and "
                f"{len(rows)} row indices; give one of each per picture"
            )
        if self.part not in ("all", *PARTS):
            raise DataError(f"part must be all, train or test, got {self.part!r}")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "rows", rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (
            f"LabelledPictures({self.world.name!r}, {len(self)} pictures, part={self.part!r}, source={self.source!r})"
        )

    def split(self, part: str) -> LabelledPictures:
        """The ``"train"`` or ``"test"`` part (:func:`held_out_mask`: the world's held-out rows)."""
        if part not in PARTS:
            raise DataError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
        if self.part == part:
            return self
        if self.part != "all":
            raise DataError(f"these pictures are already the {self.part} part; split the whole set")
        keep = held_out_mask(self.world, self.rows) == (part == "test")
        if not keep.any():
            raise DataError(f"{self.source}: no picture falls in the {part} part (rows {_span(self.rows)})")
        return LabelledPictures(self.world, self.images[keep], self.factors[keep], self.rows[keep], self.source, part)

    def row(self, index: int) -> int:
        """Position of the picture whose row index is ``index``; a DataError if there is none."""
        hit = np.flatnonzero(self.rows == int(index))
        if not len(hit):
            raise DataError(f"{self.source}: no picture with row index {index} (rows {_span(self.rows)})")
        return int(hit[0])

    def factors_of(self, index: int) -> dict[str, int | float]:
        """``{factor: class or value}`` of the picture at row index ``index``."""
        values = self.factors[self.row(index)]
        return {f.name: float(v) if f.continuous else int(v) for f, v in zip(self.world.factors, values.tolist())}

    def tensors(self):
        """``(images, factors)`` as torch tensors: uint8 ``[N, *image_shape]``
        and float64 ``[N, F]`` (int64 for a world without continuous factors)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.images)), torch.from_numpy(np.ascontiguousarray(self.factors))


def _span(rows: np.ndarray) -> str:
    return f"{int(rows.min())}-{int(rows.max())}" if len(rows) else "none"
