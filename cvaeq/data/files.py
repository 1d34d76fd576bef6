"""Grid files: one loading API for a world's rendered grid and real data files.

Every world's files share the real dSprites dataset's layout, an ``.npz`` holding

========================  ===========================  ==========================
member                    dtype, shape                 what
========================  ===========================  ==========================
``imgs``                  uint8 ``(N, *image_shape)``  binary images, 0/1, or
                                                       8-bit levels 0..255
                                                       (``(N, H, W)`` or
                                                       ``(N, C, H, W)``)
``latents_classes``       int64 ``(N, C + F)``         the world's constant
                                                       columns (dSprites: color),
                                                       then its F factors
``latents_values``        float64 ``(N, C + F)``       the same as grid values
``metadata_json``         0-d unicode (cvaeq only)     JSON text, loads unpickled
``metadata``              object (real file only)      pickled dict: never read
========================  ===========================  ==========================

The image shape, the pixel kind, the factors and the constant columns come
from the file's world (:class:`~cvaeq.world.World`; ``metadata_json`` records
its name, and files without one are dSprites files). An 8-bit world's images
are stored as they are, one byte per pixel and channel (the colour
pendulum's 64×64×3: 12,288 bytes a picture, 341 MB for its 27,783).

Loading never unpickles (``allow_pickle=False``; the real file's pickled
``metadata`` is skipped unread: cvaeq knows that metadata already). Members
stored uncompressed (the rendered grid) are memory-mapped, so opening the
3 GB grid costs nothing; compressed images (the real file) are decompressed
once, in chunks, and binary ones kept bit-packed (0.38 GB instead of 3 GB). Images leave
a :class:`Grid` as uint8 and are converted to float only per batch.

A world with a continuous factor has no grid classes; its files (written by
``cvaeq data import``, :func:`write_labelled`) hold its factor values as
float64 columns instead of ``latents_classes``/``latents_values``:

========================  ===========================  ==========================
member                    dtype, shape                 what
========================  ===========================  ==========================
``imgs``                  uint8 ``(N, *image_shape)``  the pictures
``factors``               float64 ``(N, F)``           the F factors' values in
                                                       the world's order
                                                       (categorical columns:
                                                       whole classes)
``rows``                  int64 ``(N,)``               each picture's row index
                                                       in its source (decides
                                                       the held-out test part)
``metadata_json``         0-d unicode                  JSON text: world, source
========================  ===========================  ==========================

Labelled pictures of a world without continuous factors are written in the
grid layout above, with the ``rows`` member added. :func:`read_labelled`
reads either back as :class:`~cvaeq.data.labelled.LabelledPictures`.

Writing goes through :class:`NpzWriter`, which streams members chunk by chunk
into an uncompressed zip (so a 3 GB array never sits in memory), with fixed
timestamps (so the same arrays give the same bytes), atomically.

>>> import tempfile, pathlib
>>> world = get_world("dsprites")
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.npz"
>>> classes = np.array([[2, 5, 0, 16, 16], [0, 0, 0, 0, 0]])
>>> _ = write_images(path, world.render(classes), classes, world=world)
>>> grid = load_grid(path)
>>> len(grid), grid.complete, grid.world.name
(2, False, 'dsprites')
>>> grid.images_at(world.indices_of(classes[:1])).shape
(1, 64, 64)
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..limits import MAX_GRID_BYTES, checked_file
from ..paths import atomic_path, default_grid_path
from ..world import World, get_world
from .picture_set import LabelledPictures

__all__ = [
    "Grid",
    "NpzWriter",
    "load_grid",
    "cached_grid",
    "read_metadata",
    "write_images",
    "layout_arrays",
    "write_labelled",
    "read_labelled",
]


def required(world: World) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Members every grid file of ``world`` must have, with dtype and trailing shape."""
    columns = len(world.file_constants) + len(world.factors)
    return {
        "imgs": (np.dtype(np.uint8), tuple(world.image_shape)),
        "latents_classes": (np.dtype(np.int64), (columns,)),
        "latents_values": (np.dtype(np.float64), (columns,)),
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

    def __enter__(self) -> NpzWriter:
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


def layout_arrays(classes: np.ndarray, world: World | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``latents_classes`` and ``latents_values`` ``(N, C + F)`` for ``(N, F)``
    factor classes: the world's constant columns first (class 0, their value),
    as in the real dSprites file (its color column)."""
    world = get_world(world)
    classes = world.check_classes(classes)
    n = len(classes)
    consts = world.file_constants
    lc = np.concatenate([np.zeros((n, len(consts)), np.int64), classes], axis=1)
    lv = np.concatenate(
        [np.tile(np.array([v for _, v in consts], dtype=np.float64), (n, 1)), world.values_of(classes)], axis=1
    )
    return lc, lv


def write_images(
    path: str | os.PathLike,
    imgs: np.ndarray,
    classes: np.ndarray,
    metadata: dict | None = None,
    extra: dict[str, np.ndarray] | None = None,
    world: World | str | None = None,
) -> Path:
    """Write images and their ``(N, F)`` classes in the grid layout of ``world``, atomically.

    ``metadata`` is stored as JSON text (``metadata_json``, with the world's
    name added); ``extra`` arrays are added as further members. Returns the path written.
    """
    path = Path(path)
    world = get_world(world)
    lc, lv = layout_arrays(classes, world)
    metadata = {**(metadata or {}), "world": world.name}
    with atomic_path(path) as tmp, open(tmp, "wb") as f, NpzWriter(f) as w:
        w.add("imgs", np.asarray(imgs, dtype=np.uint8))
        w.add("latents_classes", lc)
        w.add("latents_values", lv)
        for name, arr in (extra or {}).items():
            w.add(name, arr)
        w.add("metadata_json", np.array(json.dumps(metadata, sort_keys=True)))
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
    size = path.stat().st_size
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
            _check_claim(path, name, info, dtype, tuple(shape), header_len, size)
            offset = None
            if info.compress_type == zipfile.ZIP_STORED:
                raw.seek(info.header_offset)
                local = raw.read(30)
                if local[:4] == b"PK\x03\x04":
                    n_name, n_extra = struct.unpack("<HH", local[26:30])
                    offset = info.header_offset + 30 + n_name + n_extra + header_len
                    if offset + info.file_size - header_len > size:
                        raise DataError(f"{path}: member {name!r} runs past the end of the file (truncated?)")
            out[name] = _Member(name, dtype, tuple(shape), fortran, offset)
    return out


#: Largest ``metadata_json`` (it holds a story's text, at most 1 MiB).
_MAX_METADATA = 16 << 20
#: Most a deflated member can expand: deflate's limit is 1032:1.
_MAX_RATIO = 1032


def _check_claim(
    path: Path, name: str, info: zipfile.ZipInfo, dtype: np.dtype, shape: tuple[int, ...], header_len: int, size: int
) -> None:
    """Refuse a member whose header claims more data than its bytes can hold, before anything is read:
    the zip's sizes must match the ``.npy`` header, and a compressed member can expand at most
    :data:`_MAX_RATIO` times."""
    if dtype.hasobject:  # pickled (the real file's metadata): never read, so never expanded
        return
    if any(d < 0 for d in shape):
        raise DataError(f"{path}: member {name!r} claims a negative shape {shape}")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if info.file_size != header_len + nbytes:
        raise DataError(
            f"{path}: member {name!r} claims shape {shape} ({nbytes:,} bytes) but holds "
            f"{max(info.file_size - header_len, 0):,}; the file is corrupt, rebuild it"
        )
    if info.file_size > max(info.compress_size, 1) * _MAX_RATIO or info.compress_size > size:
        raise DataError(
            f"{path}: member {name!r} claims {info.file_size:,} bytes from {info.compress_size:,} "
            "compressed ones, more than any real file; the file is corrupt"
        )


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a cvaeq-written file (``{}`` for the real file)."""
    path = checked_file(path, "grid", MAX_GRID_BYTES, DataError)
    members = _members(path)
    if "metadata_json" not in members:
        return {}
    m = members["metadata_json"]
    if m.dtype.kind != "U" or m.shape != () or m.dtype.itemsize > _MAX_METADATA:
        raise DataError(f"{path}: metadata_json is not a JSON text of at most {_MAX_METADATA:,} bytes")
    with np.load(path, allow_pickle=False) as z:
        try:
            return json.loads(str(z["metadata_json"][()]))
        except (ValueError, TypeError, RecursionError) as e:
            raise DataError(f"{path}: metadata_json is not valid JSON ({type(e).__name__})") from None


@dataclass(eq=False)
class Grid:
    """Images of a grid file and the factor classes naming each row.

    ``classes`` is ``(N, F)`` int64 in ``world``'s factor order; ``indices``
    the grid index of each row.
    Images are a read-only uint8 memory map (uncompressed file) or kept
    bit-packed in memory (compressed file); read them with
    :meth:`images_at` (by grid index) or :meth:`rows` (by row).
    """

    path: Path
    classes: np.ndarray
    indices: np.ndarray
    metadata: dict
    world: World
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
        """``(n, *image_shape)`` uint8 images of the given rows (0/1, or levels 0..255 in an 8-bit world)."""
        rows = np.asarray(rows, dtype=np.int64)
        # Sorted access is much faster on a memory map; undo the sort afterwards.
        order = np.argsort(rows, kind="stable")
        got = self._imgs[rows[order]]
        if self._packed:
            got = np.unpackbits(got, axis=-1, count=self.world.image_shape[-1])
        out = np.empty_like(got)
        out[order] = got
        return out

    def rows_of(self, indices: np.ndarray) -> np.ndarray:
        """Rows holding the given grid indices; a DataError if one is absent."""
        indices = np.asarray(indices, dtype=np.int64)
        n_images = self.world.n_images
        if indices.size and (indices.min() < 0 or indices.max() >= n_images):
            raise DataError(f"grid indices must lie in [0, {n_images}); got {indices.min()}..{indices.max()}")
        if self._row_of is None:
            return indices
        rows = self._row_of[indices]
        if np.any(rows < 0):
            missing = int(indices[np.argmax(rows < 0)])
            raise DataError(
                f"{self.path}: has no image for grid index {missing} "
                f"({dict(zip(self.world.names, self.world.classes_array_of(np.array([missing]))[0].tolist()))}); "
                f"use the full grid (`cvaeq data build --world {self.world.name}`)"
            )
        return rows

    def images_at(self, indices: np.ndarray) -> np.ndarray:
        """``(n, *image_shape)`` uint8 images of the given grid indices."""
        return self.rows(self.rows_of(indices))


def cached_grid(world: World | str | None = None) -> Grid | None:
    """The world's grid file in the cache (``cvaeq data build``; for dSprites the
    real file if it is there) if there is one, else None: the images are then rendered."""
    world = get_world(world)
    path = default_grid_path(world.name)
    return load_grid(path, world) if path.is_file() else None


def _check_members(path: Path, members: dict, world: World) -> int:
    """The number of images of a grid file whose arrays are each of the dtype, shape and order ``world`` needs."""
    for name, (dtype, tail) in required(world).items():
        if name not in members:
            raise DataError(
                f"{path}: no {name!r} array (found: {', '.join(sorted(members)) or 'none'}); "
                f"not a {world.name} grid file"
            )
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
    return n


def load_grid(path: str | os.PathLike | None = None, world: World | str | None = None) -> Grid:
    """Open a grid file of ``world``: its rendered grid, a real data file, or a subset.

    ``world=None``: the world the file's metadata names, else dSprites (the
    real file and files written before worlds). ``path=None`` means
    :func:`cvaeq.paths.default_grid_path` of the world (for dSprites, the real
    file if it is in the cache, else the rendered grid). Any missing member,
    wrong dtype or shape, a file of another world, or classes that disagree
    with their values is a :class:`~cvaeq.errors.DataError` naming the file
    and the problem.
    """
    given = None if world is None else get_world(world)
    path = Path(path) if path is not None else default_grid_path(given.name if given else None)
    name = given.name if given else "dsprites"
    checked_file(
        path,
        "grid",
        MAX_GRID_BYTES,
        DataError,
        f"run `cvaeq data build --world {name}` to render it"
        + (
            ", or pass --npz PATH to the real dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
            if name == "dsprites"
            else ""
        ),
    )
    members = _members(path)
    metadata = read_metadata(path) if "metadata_json" in members else {}
    named = metadata.get("world") if isinstance(metadata, dict) else None
    if given is not None and named is not None and named != given.name:
        raise DataError(
            f"{path}: a grid file of world {named!r}, not {given.name!r}; "
            f"build one with `cvaeq data build --world {given.name}`"
        )
    world = given or get_world(named if isinstance(named, str) else None)
    n = _check_members(path, members, world)

    # Small arrays: read normally, never unpickling (the pickled metadata is not touched).
    with np.load(path, allow_pickle=False) as z:
        lc = z["latents_classes"]
        lv = z["latents_values"]
    classes = _check_classes(path, lc, lv, world)
    indices = world.indices_of(classes)

    n_images = world.n_images
    complete = n == n_images and np.array_equal(indices, np.arange(n_images))
    row_of = None
    if not complete:
        row_of = np.full(n_images, -1, dtype=np.int64)
        row_of[indices] = np.arange(n)

    imgs, packed = _open_images(path, members["imgs"], n, world)
    return Grid(path, classes, indices, metadata, world, imgs, packed, row_of)


def _check_classes(path: Path, lc: np.ndarray, lv: np.ndarray, world: World) -> np.ndarray:
    c = len(world.file_constants)
    sizes = np.array([1] * c + [f.size for f in world.factors])
    bad = (lc < 0) | (lc >= sizes)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{path}: latents_classes[{row}, {col}] = {lc[row, col]} is outside 0..{sizes[col] - 1}")
    classes = np.ascontiguousarray(lc[:, c:])
    expect = world.values_of(classes)
    off = ~np.isclose(lv[:, c:], expect, atol=1e-6)
    if off.any():
        row, col = np.argwhere(off)[0]
        raise DataError(
            f"{path}: latents_values[{row}, {col + c}] = {lv[row, col + c]:g} does not match "
            f"latents_classes (expected {expect[row, col]:g})"
        )
    return classes


def _open_images(path: Path, m: _Member, n: int, world: World) -> tuple[np.ndarray, bool]:
    shape = tuple(world.image_shape)
    binary = world.pixel == "binary"
    if m.data_offset is not None:
        imgs = np.memmap(path, dtype=np.uint8, mode="r", offset=m.data_offset, shape=m.shape)
        if binary:
            _check_binary(path, imgs[: min(n, 256)])
        return imgs, False
    # Compressed: decompress in chunks; binary images are kept bit-packed (8x smaller than uint8).
    *lead, w = shape
    out = np.empty((n, *lead, (w + 7) // 8) if binary else (n, *shape), dtype=np.uint8)
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        for start, chunk in _read_chunks(path, f, n, shape):
            if binary and start == 0:
                _check_binary(path, chunk[:256])
            out[start : start + len(chunk)] = np.packbits(chunk, axis=-1) if binary else chunk
    return out, binary


def _read_chunks(path: Path, f, n: int, shape: tuple[int, ...]) -> Iterator[tuple[int, np.ndarray]]:
    per = int(np.prod(shape))
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        buf = f.read(count * per)
        if len(buf) != count * per:
            raise DataError(f"{path}: 'imgs' is truncated at image {start + len(buf) // per} of {n}")
        yield start, np.frombuffer(buf, dtype=np.uint8).reshape(count, *shape)


def _check_binary(path: Path, sample: np.ndarray) -> None:
    if sample.size and sample.max() > 1:
        raise DataError(f"{path}: 'imgs' holds values up to {sample.max()}; expected 0/1 images")


# --------------------------------------------------------------------------- labelled pictures


def write_labelled(path: str | os.PathLike, pictures: LabelledPictures) -> Path:
    """Write :class:`~cvaeq.data.labelled.LabelledPictures` to an ``.npz``, atomically (layout in the module doc).

    >>> import tempfile, pathlib
    >>> from cvaeq.data.labelled import load_labelled
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
    >>> pics = load_labelled(world="morphomnist")
    >>> _ = write_labelled(path, pics)
    >>> back = read_labelled(path)
    >>> back.world.name, len(back), bool((back.factors == pics.factors).all())
    ('morphomnist', 8000, True)
    """
    world = pictures.world
    metadata = {"world": world.name, "source": pictures.source, "part": pictures.part, "layout": "labelled"}
    if not world.continuous:
        return write_images(path, pictures.images, pictures.factors, metadata, {"rows": pictures.rows}, world)
    with atomic_path(path) as tmp, open(tmp, "wb") as f, NpzWriter(f) as w:
        w.add("imgs", pictures.images)
        w.add("factors", np.ascontiguousarray(pictures.factors, dtype=np.float64))
        w.add("rows", np.ascontiguousarray(pictures.rows, dtype=np.int64))
        w.add("metadata_json", np.array(json.dumps(metadata, sort_keys=True)))
    return Path(path)


def read_labelled(path: str | os.PathLike, world: World | str | None = None) -> LabelledPictures:
    """The :class:`~cvaeq.data.labelled.LabelledPictures` of a file :func:`write_labelled` wrote
    (or any grid file of a world without continuous factors: rows are then its row numbers).

    ``world=None``: the world the file names. Checked as :func:`load_grid`
    checks a grid file: headers first, sizes bounded, nothing unpickled.
    """
    path = checked_file(
        path, "labelled pictures (.npz)", MAX_GRID_BYTES, DataError, "write one with `cvaeq data import`"
    )
    members = _members(path)
    metadata = read_metadata(path) if "metadata_json" in members else {}
    named = metadata.get("world") if isinstance(metadata, dict) else None
    given = None if world is None else get_world(world)
    if given is not None and named is not None and named != given.name:
        raise DataError(f"{path}: pictures of world {named!r}, not {given.name!r}")
    world = given or get_world(named if isinstance(named, str) else None)
    source = str(metadata.get("source") or path) if isinstance(metadata, dict) else str(path)
    if not world.continuous:
        grid = load_grid(path, world)
        rows = _small(path, members, "rows", np.int64, (len(grid),)) if "rows" in members else np.arange(len(grid))
        return LabelledPictures(world, grid.rows(np.arange(len(grid))), grid.classes, rows, source)
    n = members["imgs"].shape[0] if "imgs" in members else 0
    want = {
        "imgs": (np.uint8, (n, *world.image_shape)),
        "factors": (np.float64, (n, len(world.factors))),
        "rows": (np.int64, (n,)),
    }
    got = {name: _small(path, members, name, dtype, shape) for name, (dtype, shape) in want.items()}
    if n == 0:
        raise DataError(f"{path}: holds no pictures")
    return LabelledPictures(world, got["imgs"], got["factors"], got["rows"], source)


def _small(path: Path, members: dict, name: str, dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Member ``name``, checked from its header to be ``dtype`` of ``shape`` in C order, then read."""
    m = members.get(name)
    if m is None:
        raise DataError(
            f"{path}: no {name!r} array (found: {', '.join(sorted(members)) or 'none'}); "
            "write the file with `cvaeq data import`"
        )
    if m.dtype != np.dtype(dtype) or m.shape != tuple(shape) or m.fortran:
        raise DataError(f"{path}: {name!r} is {m.dtype} {m.shape}, expected {np.dtype(dtype)} {tuple(shape)}")
    with np.load(path, allow_pickle=False) as z:
        return z[name]
