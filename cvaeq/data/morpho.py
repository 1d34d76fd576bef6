"""The standard Morpho-MNIST layout: IDX pictures and labels, and a ``PREFIX-morpho.csv`` table.

A Morpho-MNIST folder (Castro et al. 2019; as the counterfactual benchmarks
ship it) holds, for a prefix ``t10k`` (test) or ``train``:

==================================  =========================================
``PREFIX-images-idx3-ubyte[.gz]``   N pictures, IDX unsigned bytes (N, 28, 28)
``PREFIX-labels-idx1-ubyte[.gz]``   their digit classes, IDX unsigned bytes (N,)
``PREFIX-morpho.csv``               ``index,thickness,intensity``: one row per
                                    picture, ``index`` 0 .. N-1
==================================  =========================================

The labels give the world's one factor the table does not name (Morpho-MNIST:
``digit``, class k for label k); the table's other columns give the rest by
name (every continuous factor must be there). The table's ``index`` column
must hold each of 0 .. N-1 exactly once (any order): row ``i`` of the table
describes picture ``i`` of the IDX file, which is how Morpho-MNIST pairs
them. Morpho-MNIST's other measurements (``area``, ``length``, ``slant``,
``width``, ``height``), which its original tables carry, are skipped; any
other column is an error (a typo of a factor's name would otherwise go
unnoticed). Counts that differ between the pictures, the labels and the
table are an error, as is any label or value off its factor's domain.

Where both ``NAME`` and ``NAME.gz`` are present (torchvision keeps both), the
uncompressed one is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..limits import MAX_IMAGES
from ..world import World
from .idx import read_idx
from .picture_set import LabelledPictures
from .table import read_table

__all__ = ["read_morpho", "is_morpho", "morpho_files", "MORPHO_EXTRA"]

#: Columns of Morpho-MNIST's original tables that are measurements, not factors: skipped.
MORPHO_EXTRA = ("area", "length", "slant", "width", "height")
_TABLE = "-morpho.csv"


def is_morpho(path: Path) -> bool:
    """Whether ``path`` is a ``PREFIX-morpho.csv`` file or a folder holding one."""
    path = Path(path)
    if path.name.endswith(_TABLE):
        return True
    try:
        return path.is_dir() and any(p.name.endswith(_TABLE) for p in path.iterdir())
    except OSError:
        return False


def morpho_files(path: Path, prefix: str | None = None) -> tuple[Path, Path, Path]:
    """The pictures, labels and table files of a Morpho-MNIST folder (or of its table's path)."""
    path = Path(path)
    if path.name.endswith(_TABLE) and not path.is_dir():
        folder, found = path.parent, path.name[: -len(_TABLE)]
        if prefix is not None and prefix != found:
            raise DataError(f"{path}: a table of prefix {found!r}, not {prefix!r}")
        prefix = found
    else:
        folder = path
        prefixes = sorted(p.name[: -len(_TABLE)] for p in folder.iterdir() if p.name.endswith(_TABLE))
        if prefix is None:
            if len(prefixes) != 1:
                raise DataError(
                    f"{folder}: holds the Morpho-MNIST sets {', '.join(prefixes)}; say which (--prefix "
                    f"{prefixes[0]}, or give the path of its {prefixes[0]}{_TABLE})"
                )
            prefix = prefixes[0]
        elif prefix not in prefixes:
            raise DataError(f"{folder}: no {prefix}{_TABLE}; found {', '.join(prefixes) or 'none'}")
    return (
        _one(folder, f"{prefix}-images-idx3-ubyte"),
        _one(folder, f"{prefix}-labels-idx1-ubyte"),
        folder / f"{prefix}{_TABLE}",
    )


def _one(folder: Path, name: str) -> Path:
    plain, zipped = folder / name, folder / f"{name}.gz"
    if plain.exists() or plain.is_symlink():
        return plain
    if zipped.exists() or zipped.is_symlink():
        return zipped
    raise DataError(f"{folder}: no {name} or {name}.gz; a Morpho-MNIST folder holds both IDX files and the table")


def read_morpho(path: str | Path, world: World, prefix: str | None = None) -> LabelledPictures:
    """The labelled pictures of a Morpho-MNIST folder (rules in the module doc).

    >>> from cvaeq.world import get_world
    >>> world = get_world("morphomnist")
    >>> pics = read_morpho(world.data, world)
    >>> len(pics), pics.factors_of(7001)["digit"]
    (8000, 2)
    """
    images_path, labels_path, table_path = morpho_files(Path(path), prefix)
    shape = tuple(world.image_shape)
    if len(shape) == 3 and shape[0] != 1:
        raise DataError(f"world {world.name!r} has colour pictures; the Morpho-MNIST layout holds grey ones")
    table = read_table(table_path, "Morpho-MNIST table")
    label_factor, columns = _columns(table.columns, world, table_path)
    images = read_idx(images_path, 3, "images", shape[-2:], MAX_IMAGES).reshape(-1, *shape)
    labels = read_idx(labels_path, 1, "labels", None, MAX_IMAGES)
    if not (len(images) == len(labels) == len(table)):
        raise DataError(
            f"{images_path.parent}: {len(images):,} pictures, {len(labels):,} labels and {len(table):,} table "
            "rows; the three files of a Morpho-MNIST set have one entry per picture"
        )
    if world.pixel == "binary" and int(images.max()) > 1:
        raise DataError(f"{images_path}: grey levels up to {images.max()}; world {world.name!r} has 0/1 pictures")
    order = _order(table, table_path)
    factor = world.factor(label_factor)
    if int(labels.max()) >= factor.size:
        bad = int(np.argmax(labels >= factor.size))
        raise DataError(
            f"{labels_path}: label {labels[bad]} (picture {bad}) is not a class of {label_factor} "
            f"(0 to {factor.size - 1})"
        )
    dtype = np.float64 if world.continuous else np.int64
    factors = np.empty((len(images), len(world.factors)), dtype=dtype)
    factors[:, world.index(label_factor)] = labels
    for name in columns:
        factors[:, world.index(name)] = _parse(table, name, world, table_path)[order]
    return LabelledPictures(world, images, factors, np.arange(len(images), dtype=np.int64), str(table_path.parent))


def _columns(header: tuple[str, ...], world: World, path: Path) -> tuple[str, list[str]]:
    """The factor the labels give, and the factors the table gives (checked against the header)."""
    if "index" not in header:
        raise DataError(f"{path}: no 'index' column; a Morpho-MNIST table starts index,thickness,intensity")
    unknown = [c for c in header if c != "index" and c not in world.names and c not in MORPHO_EXTRA]
    if unknown:
        raise DataError(
            f"{path}: column {unknown[0]!r} is not a factor of world {world.name!r} "
            f"({', '.join(world.names)}) nor a Morpho-MNIST measurement; rename or drop it"
        )
    given = [c for c in header if c in world.names]
    rest = [f for f in world.names if f not in given]
    missing = [f for f in rest if world.factor(f).continuous]
    if missing or len(rest) != 1:
        need = missing[0] if missing else (rest[1] if len(rest) > 1 else None)
        if need is None:
            raise DataError(f"{path}: the table names every factor; the labels file would give none")
        raise DataError(f"{path}: no {need!r} column; the table gives every factor but the labels' one")
    return rest[0], given


def _order(table, path: Path) -> np.ndarray:
    """For picture i, the table row describing it (``index`` holds each of 0..N-1 once)."""
    n = len(table)
    index = np.full(n, -1, dtype=np.int64)
    for i, text in enumerate(table.column("index")):
        if not text.isdigit() or not text.isascii():
            raise DataError(f"{path}: line {table.lines[i]}: index {text!r} is not a row number 0..{n - 1}")
        k = int(text)
        if k >= n:
            raise DataError(
                f"{path}: line {table.lines[i]}: index {k} but the table has {n:,} rows (indices 0..{n - 1})"
            )
        if index[k] >= 0:
            raise DataError(
                f"{path}: line {table.lines[i]}: index {k} is given twice (first on line "
                f"{table.lines[index[k]]}); give each picture one row"
            )
        index[k] = i
    return index


def _parse(table, name: str, world: World, path: Path) -> np.ndarray:
    """A factor's column: its values (continuous) or classes, each checked, else a DataError naming the line."""
    factor = world.factor(name)
    out = np.empty(len(table), dtype=np.float64)
    for i, text in enumerate(table.column(name)):
        try:
            out[i] = factor.parse(text)
        except DataError as e:
            raise DataError(f"{path}: line {table.lines[i]}: {e}") from None
    return out
