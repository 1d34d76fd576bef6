"""Grid files: one loading API for the rendered grid and the real dSprites file.

Both files share the real dataset's layout, an ``.npz`` holding

========================  ===========================  ==========================
member                    dtype, shape                 what
========================  ===========================  ==========================
``imgs``                  uint8 ``(N, 64, 64)``        binary images, 0/1
``latents_classes``       int64 ``(N, 6)``             color, then the 5 factors
``latents_values``        float64 ``(N, 6)``           the same as grid values
``metadata_json``         0-d unicode (cvaeq only)     JSON text, loads unpickled
``metadata``              object (real file only)      pickled dict: never read
========================  ===========================  ==========================

Loading never unpickles (``allow_pickle=False``; the real file's pickled
``metadata`` is skipped unread: cvaeq knows that metadata already). Members
stored uncompressed (the rendered grid) are memory-mapped, so opening the
3 GB grid costs nothing; compressed images (the real file) are decompressed
once, in chunks, and kept bit-packed (0.38 GB instead of 3 GB). Images leave
a :class:`Grid` as uint8 and are converted to float only per batch.

Writing goes through :class:`NpzWriter`, which streams members chunk by chunk
into an uncompressed zip (so a 3 GB array never sits in memory), with fixed
timestamps (so the same arrays give the same bytes), atomically.

>>> import tempfile, pathlib
>>> from cvaeq.worlds.dsprites.render import render
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.npz"
>>> classes = np.array([[2, 5, 0, 16, 16], [0, 0, 0, 0, 0]])
>>> _ = write_images(path, render(classes), classes)
>>> grid = load_grid(path)
>>> len(grid), grid.complete
(2, False)
>>> grid.images_at(indices_of(classes[:1])).shape
(1, 64, 64)
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import DataError
from ..paths import atomic_path, default_grid_path
from ..worlds.dsprites.factors import FACTORS, IMAGE_SIZE, LATENT_SIZES, N_IMAGES, classes_array_of, indices_of, values_of

__all__ = [
    "Grid",
    "NpzWriter",
    "load_grid",
    "read_metadata",
    "write_images",
    "layout_arrays",
]

#: Members every grid file must have, with dtype and trailing shape.
REQUIRED = {
    "imgs": (np.dtype(np.uint8), (IMAGE_SIZE, IMAGE_SIZE)),
    "latents_classes": (np.dtype(np.int64), (len(LATENT_SIZES),)),
    "latents_values": (np.dtype(np.float64), (len(LATENT_SIZES),)),
}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so equal arrays give equal bytes
_CHUNK = 8192  # images per chunk when decompressing


# --------------------------------------------------------------------------- writing


class NpzWriter:
    """Write an uncompressed ``.npz`` member by member, streaming large ones.

    Use as a context manager on an open binary file (e.g. from
    :func:`cvaeq.paths.atomic_path`). ``add(name, array)`` writes a whole
    array; ``stream(name, shape, dtype, chunks)`` writes an array given as an
    iterable of chunks along its first axis, holding one chunk at a time.
    The result loads with ``np.load(path, allow_pickle=False)``.
    """

    def __init__(self, fileobj):
        self._zip = zipfile.ZipFile(fileobj, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def __enter__(self) -> "NpzWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def _open(self, name: str):
        info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return self._zip.open(info, mode="w", force_zip64=True)

    def add(self, name: str, array: np.ndarray) -> None:
        """Write a whole array (no object arrays: nothing here needs pickle)."""
        array = np.asanyarray(array)
        with self._open(name) as f:
            np.lib.format.write_array(f, array, allow_pickle=False)

    def stream(self, name: str, shape: tuple[int, ...], dtype, chunks: Iterable[np.ndarray]) -> None:
        """Write an array of ``shape`` from C-ordered chunks along axis 0."""
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        rows = 0
        with self._open(name) as f:
            np.lib.format.write_array_header_2_0(f, header)
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk, dtype=dtype)
                if chunk.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"chunk of shape {chunk.shape} does not fit {name} {shape}")
                f.write(chunk.data)
                rows += len(chunk)
        if rows != shape[0]:
            raise ValueError(f"{name}: wrote {rows} rows, declared {shape[0]}")


def layout_arrays(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``latents_classes`` and ``latents_values`` ``(N, 6)`` (color column first)
    for ``(N, 5)`` factor classes, exactly as in the real file."""
    classes = np.asarray(classes, dtype=np.int64)
    n = len(classes)
    lc = np.concatenate([np.zeros((n, 1), np.int64), classes], axis=1)
    lv = np.concatenate([np.ones((n, 1)), values_of(classes)], axis=1)
    return lc, lv


def write_images(
    path: str | os.PathLike,
    imgs: np.ndarray,
    classes: np.ndarray,
    metadata: dict | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write images and their ``(N, 5)`` classes in the grid layout, atomically.

    ``metadata`` is stored as JSON text (``metadata_json``); ``extra`` arrays
    are added as further members. Returns the path written.
    """
    path = Path(path)
    lc, lv = layout_arrays(classes)
    with atomic_path(path) as tmp, open(tmp, "wb") as f, NpzWriter(f) as w:
        w.add("imgs", np.asarray(imgs, dtype=np.uint8))
        w.add("latents_classes", lc)
        w.add("latents_values", lv)
        for name, arr in (extra or {}).items():
            w.add(name, arr)
        w.add("metadata_json", np.array(json.dumps(metadata or {}, sort_keys=True)))
    return path


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Member:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    data_offset: int | None  # byte offset of the raw data in the file, if stored uncompressed


def _members(path: Path) -> dict[str, _Member]:
    """Headers of every ``.npy`` member, read without loading (or unpickling) data."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e}); rebuild it with `cvaeq data build`") from None
    out = {}
    with zf, open(path, "rb") as raw:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            try:
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    header_len = f.tell()
            except (ValueError, OSError, zipfile.BadZipFile) as e:
                raise DataError(f"{path}: member {name!r} is not a valid .npy array ({e})") from None
            offset = None
            if info.compress_type == zipfile.ZIP_STORED:
                raw.seek(info.header_offset)
                local = raw.read(30)
                if local[:4] == b"PK\x03\x04":
                    n_name, n_extra = struct.unpack("<HH", local[26:30])
                    offset = info.header_offset + 30 + n_name + n_extra + header_len
            out[name] = _Member(name, dtype, tuple(shape), fortran, offset)
    return out


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a cvaeq-written file (``{}`` for the real file)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        if "metadata_json" not in z.files:
            return {}
        try:
            return json.loads(str(z["metadata_json"][()]))
        except (ValueError, TypeError) as e:
            raise DataError(f"{path}: metadata_json is not valid JSON ({e})") from None


@dataclass(eq=False)
class Grid:
    """Images of a grid file and the factor classes naming each row.

    ``classes`` is ``(N, 5)`` int64; ``indices`` the grid index of each row.
    Images are a read-only uint8 memory map (uncompressed file) or kept
    bit-packed in memory (compressed file); read them with
    :meth:`images_at` (by grid index) or :meth:`rows` (by row).
    """

    path: Path
    classes: np.ndarray
    indices: np.ndarray
    metadata: dict
    _imgs: np.ndarray = field(repr=False)
    _packed: bool = field(repr=False)
    _row_of: np.ndarray | None = field(repr=False, default=None)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def complete(self) -> bool:
        """Whether the file is the whole grid in grid order (row == index)."""
        return self._row_of is None

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """``(n, 64, 64)`` uint8 0/1 images of the given rows."""
        rows = np.asarray(rows, dtype=np.int64)
        # Sorted access is much faster on a memory map; undo the sort afterwards.
        order = np.argsort(rows, kind="stable")
        got = self._imgs[rows[order]]
        if self._packed:
            got = np.unpackbits(got, axis=-1)
        out = np.empty_like(got)
        out[order] = got
        return out

    def rows_of(self, indices: np.ndarray) -> np.ndarray:
        """Rows holding the given grid indices; a DataError if one is absent."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= N_IMAGES):
            raise DataError(f"grid indices must lie in [0, {N_IMAGES}); got {indices.min()}..{indices.max()}")
        if self._row_of is None:
            return indices
        rows = self._row_of[indices]
        if np.any(rows < 0):
            missing = int(indices[np.argmax(rows < 0)])
            raise DataError(
                f"{self.path}: has no image for grid index {missing} "
                f"({dict(zip(FACTORS, classes_array_of(np.array([missing]))[0].tolist()))}); "
                "use the full grid (`cvaeq data build`)"
            )
        return rows

    def images_at(self, indices: np.ndarray) -> np.ndarray:
        """``(n, 64, 64)`` uint8 0/1 images of the given grid indices."""
        return self.rows(self.rows_of(indices))


def load_grid(path: str | os.PathLike | None = None) -> Grid:
    """Open a grid file: the rendered grid, the real dSprites file, or a subset.

    ``path=None`` means :func:`cvaeq.paths.default_grid_path` (the real file
    if it is in the cache, else the rendered grid). Any missing member, wrong
    dtype or shape, or classes that disagree with their values is a
    :class:`~cvaeq.errors.DataError` naming the file and the problem.
    """
    path = Path(path) if path is not None else default_grid_path()
    if not path.is_file():
        raise DataError(
            f"{path}: no such grid file; run `cvaeq data build` to render it, "
            "or pass --npz PATH to the real dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
        )
    members = _members(path)
    for name, (dtype, tail) in REQUIRED.items():
        if name not in members:
            raise DataError(f"{path}: no {name!r} array (found: {', '.join(sorted(members)) or 'none'}); not a dSprites grid file")
        m = members[name]
        if m.dtype != dtype:
            raise DataError(f"{path}: {name!r} has dtype {m.dtype}, expected {dtype}")
        if len(m.shape) != 1 + len(tail) or m.shape[1:] != tail:
            raise DataError(f"{path}: {name!r} has shape {m.shape}, expected (N, {', '.join(map(str, tail))})")
        if m.fortran:
            raise DataError(f"{path}: {name!r} is stored in Fortran order; expected C order")
    n = members["imgs"].shape[0]
    for name in ("latents_classes", "latents_values"):
        if members[name].shape[0] != n:
            raise DataError(f"{path}: {name!r} has {members[name].shape[0]} rows but 'imgs' has {n}")
    if n == 0:
        raise DataError(f"{path}: holds no images")

    # Small arrays: read normally, never unpickling (the pickled metadata is not touched).
    with np.load(path, allow_pickle=False) as z:
        lc = z["latents_classes"]
        lv = z["latents_values"]
    classes = _check_classes(path, lc, lv)
    indices = indices_of(classes)
    metadata = read_metadata(path) if "metadata_json" in members else {}

    complete = n == N_IMAGES and np.array_equal(indices, np.arange(N_IMAGES))
    row_of = None
    if not complete:
        row_of = np.full(N_IMAGES, -1, dtype=np.int64)
        row_of[indices] = np.arange(n)

    imgs, packed = _open_images(path, members["imgs"], n)
    return Grid(path, classes, indices, metadata, imgs, packed, row_of)


def _check_classes(path: Path, lc: np.ndarray, lv: np.ndarray) -> np.ndarray:
    sizes = np.array(LATENT_SIZES)
    bad = (lc < 0) | (lc >= sizes)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: latents_classes[{row}, {col}] = {lc[row, col]} is outside 0..{sizes[col] - 1}"
        )
    classes = np.ascontiguousarray(lc[:, 1:])
    expect = values_of(classes)
    off = ~np.isclose(lv[:, 1:], expect, atol=1e-6)
    if off.any():
        row, col = np.argwhere(off)[0]
        raise DataError(
            f"{path}: latents_values[{row}, {col + 1}] = {lv[row, col + 1]:g} does not match "
            f"latents_classes (expected {expect[row, col]:g})"
        )
    return classes


def _open_images(path: Path, m: _Member, n: int) -> tuple[np.ndarray, bool]:
    if m.data_offset is not None:
        imgs = np.memmap(path, dtype=np.uint8, mode="r", offset=m.data_offset, shape=m.shape)
        _check_binary(path, imgs[: min(n, 256)])
        return imgs, False
    # Compressed: decompress in chunks, keep bit-packed (8x smaller than uint8).
    packed = np.empty((n, IMAGE_SIZE, IMAGE_SIZE // 8), dtype=np.uint8)
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        for start, chunk in _read_chunks(path, f, n):
            if start == 0:
                _check_binary(path, chunk[:256])
            packed[start : start + len(chunk)] = np.packbits(chunk, axis=-1)
    return packed, True


def _read_chunks(path: Path, f, n: int) -> Iterator[tuple[int, np.ndarray]]:
    per = IMAGE_SIZE * IMAGE_SIZE
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        buf = f.read(count * per)
        if len(buf) != count * per:
            raise DataError(f"{path}: 'imgs' is truncated at image {start + len(buf) // per} of {n}")
        yield start, np.frombuffer(buf, dtype=np.uint8).reshape(count, IMAGE_SIZE, IMAGE_SIZE)


def _check_binary(path: Path, sample: np.ndarray) -> None:
    if sample.size and sample.max() > 1:
        raise DataError(f"{path}: 'imgs' holds values up to {sample.max()}; expected 0/1 images")
