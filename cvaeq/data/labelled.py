"""Labelled pictures: a world's real pictures and the factor values measured on each.

A world with no renderer (Morpho-MNIST) is made of files: pictures and a
table of their factors. :func:`load_labelled` reads them, from any of

* the **standard Morpho-MNIST layout** (:mod:`cvaeq.data.morpho`): a folder
  with ``PREFIX-images-idx3-ubyte[.gz]``, ``PREFIX-labels-idx1-ubyte[.gz]``
  and ``PREFIX-morpho.csv`` (``t10k`` or ``train``; a user's full 60,000
  ``train-*`` files work unchanged);
* a **folder of PNG files and a** ``factors.csv`` (:mod:`cvaeq.data.pictures`),
  the layout for a user's own labelled pictures;
* a **data file** written by ``cvaeq data import`` (:func:`cvaeq.data.files.write_labelled`).

Whichever it came from, the result is one value, :class:`LabelledPictures`:
uint8 pictures ``(N, *image_shape)``, their factor values ``(N, F)`` in the
world's factor order (float64 when the world has a continuous factor, with
the categorical columns holding exact whole classes; int64 classes when it
has none), and each picture's row index in its source. ``split("train")`` and
``split("test")`` divide them by the world's held-out rows
(:attr:`cvaeq.world.World.test_rows`; Morpho-MNIST: rows 7000-7999).

Every file is bounded and checked before its contents are read (sizes from
headers, regular files only, gzip streams never decompressed past what the
header implies); anything wrong is a one-line :class:`~cvaeq.errors.DataError`
saying what and what to do.

>>> pics = load_labelled(world="morphomnist")            # the world's shipped files
>>> len(pics), pics.images.shape, pics.factors.dtype, pics.factors[0].round(2).tolist()
(8000, (8000, 28, 28), dtype('float64'), [7.0, 2.27, 145.27])
>>> test = pics.split("test")
>>> len(test), int(test.rows[0]), len(pics.split("train"))
(1000, 7000, 7000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..world import World, get_world

__all__ = [
    "LabelledPictures",
    "load_labelled",
    "held_out_mask",
    "training_parts",
    "show_picture",
    "no_truth",
    "require_renderer",
    "PARTS",
]

#: The parts a set of labelled pictures splits into.
PARTS = ("train", "test")


def held_out_mask(world: World, rows: np.ndarray) -> np.ndarray:
    """Which ``rows`` (row indices in the source) are held out for testing.

    The world's :attr:`~cvaeq.world.World.test_rows` when it declares them;
    else the last tenth of the rows by index (at least one), so a user's own
    world has a test part without declaring one.

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


def load_labelled(
    source: str | os.PathLike | None = None, world: World | str | None = None, prefix: str | None = None
) -> LabelledPictures:
    """The labelled pictures of ``world`` at ``source`` (the layouts are in the module doc).

    :param source: a folder (Morpho-MNIST layout, or PNGs with ``factors.csv``),
        a ``PREFIX-morpho.csv`` file, a ``factors.csv`` file, or an ``.npz``
        data file; None: the world's shipped files (:attr:`~cvaeq.world.World.data`).
    :param world: the world (default: the data file's, else dSprites... which
        has no labelled files; name it).
    :param prefix: the Morpho-MNIST prefix (``t10k``, ``train``) when a folder holds several.
    """
    given = None if world is None else get_world(world)
    if source is None:
        if given is None or given.data is None:
            name = given.name if given is not None else "the default world"
            raise DataError(f"{name} ships no labelled pictures; give their folder or file")
        source = given.data
    path = Path(source)
    if path.suffix == ".npz":
        from .files import read_labelled

        return read_labelled(path, given)
    if given is None:
        raise DataError(f"{path}: say which world these pictures are of (--world NAME)")
    from .morpho import is_morpho, read_morpho
    from .pictures import FACTORS_CSV, read_pictures

    if path.name == FACTORS_CSV or (path.is_dir() and (path / FACTORS_CSV).exists()):
        return read_pictures(path, given)
    if is_morpho(path):
        return read_morpho(path, given, prefix)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: no such folder or file of labelled pictures")
    raise DataError(
        f"{path}: not a folder of labelled pictures: expected PREFIX-images-idx3-ubyte[.gz], "
        f"PREFIX-labels-idx1-ubyte[.gz] and PREFIX-morpho.csv (Morpho-MNIST), PNG files with a {FACTORS_CSV}, "
        "or a .npz written by `cvaeq data import`"
    )


def training_parts(world: World | str, source: str | os.PathLike | None = None) -> dict:
    """The train and test parts of a renderer-less world's labelled pictures, as tensors.

    ``{"train": (images, factors), "test": (images, factors)}``: uint8 images
    ``[N, *image_shape]`` and float64 factor values ``[N, F]`` in the world's
    order (int64 classes for a world without continuous factors); the parts
    are :meth:`LabelledPictures.split`'s. ``source``: as :func:`load_labelled`
    (default: the world's shipped files). What a training run of such a world reads.

    >>> parts = training_parts("morphomnist")
    >>> {k: (tuple(x.shape), y.dtype) for k, (x, y) in parts.items()}
    {'train': ((7000, 28, 28), torch.float64), 'test': ((1000, 28, 28), torch.float64)}
    """
    pics = load_labelled(source, world)
    return {part: pics.split(part).tensors() for part in PARTS}


def no_truth(world: World) -> str:
    """The sentence every face shows for a world without a renderer, in place of a true picture.

    >>> no_truth(get_world("morphomnist"))  # doctest: +NORMALIZE_WHITESPACE
    "world 'morphomnist' has no renderer: its pictures are real labelled files, so no picture can be drawn
    from factors and no counterfactual has a known true picture"
    """
    return (
        f"world {world.name!r} has no renderer: its pictures are real labelled files, so no picture can be drawn "
        "from factors and no counterfactual has a known true picture"
    )


def require_renderer(world: World, doing: str, instead: str = "") -> None:
    """A DataError saying why ``doing`` needs a renderer ``world`` lacks, and what to do ``instead``."""
    if not world.has_renderer:
        raise DataError(f"{doing}: {no_truth(world)}" + (f"; {instead}" if instead else ""))


def show_picture(
    index: int, out: str | os.PathLike, world: World | str, source: str | os.PathLike | None = None
) -> tuple[Path, dict]:
    """Write the labelled picture at row index ``index`` to ``out`` as a PNG; its path and its factors.

    ``cvaeq data show --world morphomnist --index 7001 --out digit.png``: a
    real picture from the files (default: the world's shipped ones), for a
    world that cannot draw one from factors. Grey or RGB as the world's pictures are.
    """
    from ..viz import save_image, unit

    world = get_world(world)
    pics = load_labelled(source, world)
    at = pics.row(index)
    path = save_image(unit(pics.images[at], world.pixel), out)
    return path, {f: world.label(f, v) for f, v in pics.factors_of(index).items()}
