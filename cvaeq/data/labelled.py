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
from pathlib import Path

from ..errors import DataError
from ..world import World, get_world
from .files import read_labelled
from .morpho import is_morpho, read_morpho
from .picture_set import PARTS, LabelledPictures, held_out_mask
from .pictures import FACTORS_CSV, read_pictures

__all__ = [
    "LabelledPictures",
    "load_labelled",
    "held_out_mask",
    "training_parts",
    "show_picture",
    "PARTS",
]


def load_labelled(
    source: str | os.PathLike | None = None, world: World | str | None = None, prefix: str | None = None
) -> LabelledPictures:
    """The labelled pictures of ``world`` at ``source`` (the layouts are in the module doc).

    :param source: a folder (Morpho-MNIST layout, or PNGs with ``factors.csv``),
        a ``PREFIX-morpho.csv`` file, a ``factors.csv`` file, or an ``.npz``
        data file; None: the world's shipped files (:attr:`~cvaeq.world.World.data`).
    :param world: the world the pictures are of: required, except for an
        ``.npz`` data file, which names its own.
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
        return read_labelled(path, given)
    if given is None:
        raise DataError(f"{path}: say which world these pictures are of (--world NAME)")
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
    (default: the world's shipped files). ``cvaeq train`` reads the same parts
    as arrays (:func:`cvaeq.model.training_data.labelled_training_data`).

    >>> parts = training_parts("morphomnist")
    >>> {k: (tuple(x.shape), y.dtype) for k, (x, y) in parts.items()}
    {'train': ((7000, 28, 28), torch.float64), 'test': ((1000, 28, 28), torch.float64)}
    """
    pics = load_labelled(source, world)
    return {part: pics.split(part).tensors() for part in PARTS}


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
