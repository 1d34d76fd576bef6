"""A user's own labelled pictures: a folder of PNG files and a ``factors.csv``.

The layout for bringing your own data::

    my-digits/
      factors.csv        file,digit,thickness,intensity
      a.png              a.png,7,2.27,145.3
      b.png              b.png,2,3.21,229.1
      ...

``factors.csv``'s first column names each picture (a file in the same
folder: a plain name, no ``/``), and its other columns are the world's
factors, each once, by name: a categorical factor by its label (``7``,
``heart``), a numeric one by its number (a grid factor's value is snapped to
its grid, as in queries; a continuous one's must lie in its interval). The
row order is the pictures' row index (0 for the first row), which decides
the held-out test part (:func:`cvaeq.data.labelled.held_out_mask`).

Each PNG is read as ``--image`` reads one (:func:`cvaeq.images.decode_png`):
the world's size, decided from its header; grey or RGB 8-bit in an 8-bit
world (conversions that lose nothing only), black and white in a binary one.

Why this layout: PNG and CSV are what every tool writes (an image editor, a
camera pipeline, a spreadsheet, ``PIL.Image.save`` and ``csv.writer``), each
picture can be opened and checked by eye, and an error can name the one file
or line that is wrong. An array file (``.npz``) would be faster to read but
asks the user to get dtypes, axis order and value ranges right, and is
opaque when they are not; the ``.npz`` that ``cvaeq data import`` writes is
the fast form, made once from these files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..images import decode_png
from ..limits import MAX_IMAGE_BYTES, read_limited
from ..world import World
from .picture_set import LabelledPictures
from .table import read_table

__all__ = ["read_pictures", "FACTORS_CSV"]

#: The table's file name in a folder of labelled pictures.
FACTORS_CSV = "factors.csv"


def read_pictures(path: str | Path, world: World) -> LabelledPictures:
    """The labelled pictures of a folder of PNGs and its ``factors.csv`` (or that file's path).

    >>> import tempfile, pathlib
    >>> from cvaeq.viz import png_bytes
    >>> from cvaeq.world import get_world
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.png").write_bytes(png_bytes(np.full((28, 28), 200, np.uint8)))
    >>> _ = (d / "factors.csv").write_text("file,digit,thickness,intensity\\na.png,7,2.5,200\\n")
    >>> pics = read_pictures(d, get_world("morphomnist"))
    >>> pics.images.shape, pics.factors.tolist()
    ((1, 28, 28), [[7.0, 2.5, 200.0]])
    """
    path = Path(path)
    table_path = path if path.name == FACTORS_CSV and not path.is_dir() else path / FACTORS_CSV
    folder = table_path.parent
    table = read_table(table_path, "factors table")
    file_col = table.columns[0]
    _check_columns(table.columns, world, table_path)
    names = table.column(file_col)
    _check_names(names, table, table_path)
    dtype = np.float64 if world.continuous else np.int64
    factors = np.empty((len(table), len(world.factors)), dtype=dtype)
    for j, f in enumerate(world.factors):
        for i, text in enumerate(table.column(f.name)):
            try:
                factors[i, j] = f.parse(text)
            except DataError as e:
                raise DataError(f"{table_path}: line {table.lines[i]}: {e}") from None
    images = np.empty((len(table), *world.image_shape), dtype=np.uint8)
    for i, name in enumerate(names):
        picture = folder / name
        blob = read_limited(picture, "picture (PNG)", MAX_IMAGE_BYTES, DataError, f"line {table.lines[i]} names it")
        shape = world.image_shape if world.pixel == "8bit" else world.image_shape[-2:]
        images[i] = decode_png(blob, shape, str(picture), world.pixel).reshape(world.image_shape)
    return LabelledPictures(world, images, factors, np.arange(len(table), dtype=np.int64), str(folder))


def _check_columns(header: tuple[str, ...], world: World, path: Path) -> None:
    given = header[1:]
    unknown = [c for c in given if c not in world.names]
    if unknown:
        raise DataError(
            f"{path}: column {unknown[0]!r} is not a factor of world {world.name!r}; the columns after the "
            f"first (the file names) are its factors: {', '.join(world.names)}"
        )
    missing = [f for f in world.names if f not in given]
    if missing:
        raise DataError(
            f"{path}: no {missing[0]!r} column; give every factor of world {world.name!r}: {', '.join(world.names)}"
        )


def _check_names(names: list[str], table, path: Path) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
            raise DataError(f"{path}: line {table.lines[i]}: {name!r} is not a plain file name in the folder (no /)")
        if not name.lower().endswith(".png"):
            raise DataError(f"{path}: line {table.lines[i]}: {name!r} is not a .png file")
        if name in seen:
            raise DataError(
                f"{path}: line {table.lines[i]}: {name} is named twice (first on line {table.lines[seen[name]]}); "
                "give each picture one row"
            )
        seen[name] = i
