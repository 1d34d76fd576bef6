"""Reading IDX files (MNIST's format), plain or gzipped, bounded by their header.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian 32-bit size per dimension, then the values in
C order. MNIST and Morpho-MNIST store images as ``0x00000803`` (unsigned
bytes, three dimensions: N, rows, columns) and labels as ``0x00000801``
(unsigned bytes, one dimension: N). Only unsigned bytes (type ``0x08``) are
read: that is what the pictures and labels of every such data set are.

Every read is decided by the header before the values are read: the header's
sizes must be what the caller expects (the world's picture size, at most
:data:`~cvaeq.limits.MAX_IMAGES` items), and the file must then hold
**exactly** the bytes they imply, no fewer (truncated) and no more (trailing
data). A gzipped file (``.gz``) is decompressed in bounded steps and never
beyond one byte more than its header implies, so a gzip bomb costs nothing.
Only regular files are opened (a pipe or a device is refused before it is
opened, and opening never blocks).

>>> import gzip, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "l-idx1-ubyte.gz"
>>> _ = p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])))
>>> read_idx(p, ndim=1, what="labels").tolist()
[7, 2, 1]
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..limits import MAX_IMAGES, checked_file

__all__ = ["read_idx", "open_regular", "MAX_IDX_BYTES", "IDX_UBYTE"]

#: The IDX type code of unsigned bytes, the only one read.
IDX_UBYTE = 0x08
#: Largest IDX file, plain or gzipped (a million 64×64 RGB pictures: 12 GB would be too much; 4 GiB).
MAX_IDX_BYTES = 4 << 30
_STEP = 1 << 22  # bytes decompressed per read


def open_regular(path: Path, what: str, max_bytes: int, hint: str = ""):
    """An open binary file of ``path``, if it is a regular file of at most ``max_bytes``.

    Checked before it is opened (:func:`~cvaeq.limits.checked_file`) and again
    once open, without blocking: a pipe put there meanwhile is refused, not
    waited on.
    """
    path = checked_file(path, what, max_bytes, DataError, hint)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what} file ({e.strerror}); {hint or 'check the path'}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(f"{path}: not a regular file (a device, pipe or socket); give a {what} file")
    return os.fdopen(fd, "rb")


def read_idx(
    path: str | os.PathLike,
    ndim: int,
    what: str,
    shape: Sequence[int] | None = None,
    max_items: int = MAX_IMAGES,
) -> np.ndarray:
    """The uint8 array of an IDX file of ``ndim`` dimensions (gzipped when its name ends in ``.gz``).

    :param ndim: the dimensions the file must have (3: pictures, 1: labels).
    :param what: what the file is, for errors (``"images"``, ``"labels"``).
    :param shape: the sizes every dimension after the first must have (the
        world's picture ``(H, W)``), checked from the header before reading.
    :param max_items: most items (the first dimension) read.
    """
    path = Path(path)
    zipped = path.name.endswith(".gz")
    fix = f"give an IDX {what} file ({'gzipped ' if zipped else ''}MNIST layout)"
    with open_regular(path, f"IDX {what}", MAX_IDX_BYTES, fix) as raw:
        size = os.fstat(raw.fileno()).st_size
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if zipped else raw
        try:
            head = _read(stream, 4 + 4 * ndim, path)
            dims = _header(head, ndim, path, what, shape, max_items)
            nbytes = int(np.prod(dims, dtype=np.int64))
            if not zipped and size != len(head) + nbytes:
                raise DataError(
                    f"{path}: the header says {'×'.join(map(str, dims))} ({len(head) + nbytes:,} bytes) but the "
                    f"file has {size:,} bytes ({'truncated' if size < len(head) + nbytes else 'trailing data'}); "
                    f"{fix}"
                )
            body = _read(stream, nbytes + 1, path)  # one more: a longer stream is refused, not read on
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{path}: not a readable gzip file ({e}); {fix}") from None
    if len(body) != nbytes:
        state = "truncated" if len(body) < nbytes else "longer than its header says"
        raise DataError(
            f"{path}: the header says {'×'.join(map(str, dims))} values but the data are {state} "
            f"({min(len(body), nbytes):,}{'+' if len(body) > nbytes else ''} of {nbytes:,} bytes); {fix}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read(stream, n: int, path: Path) -> bytes:
    """Up to ``n`` bytes, read (and decompressed) in steps of at most :data:`_STEP`."""
    parts, got = [], 0
    while got < n:
        chunk = stream.read(min(_STEP, n - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _header(
    head: bytes, ndim: int, path: Path, what: str, shape: Sequence[int] | None, max_items: int
) -> tuple[int, ...]:
    """The sizes an IDX header declares, checked against what the caller expects."""
    if len(head) < 4:
        raise DataError(f"{path}: {len(head)} bytes, too short for an IDX header; give an IDX {what} file")
    magic = int.from_bytes(head[:4], "big")
    want = (IDX_UBYTE << 8) | ndim
    if magic != want:
        raise DataError(
            f"{path}: magic number 0x{magic:08x}, expected 0x{want:08x} (IDX unsigned bytes, {ndim} "
            f"dimension{'s' if ndim > 1 else ''}); give an IDX {what} file"
        )
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: {len(head)} bytes, too short for an IDX header; give an IDX {what} file")
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if not 1 <= dims[0] <= max_items:
        raise DataError(
            f"{path}: the header claims {dims[0]:,} {what}; at most {max_items:,} are read (and at least 1)"
        )
    if shape is not None and tuple(dims[1:]) != tuple(shape):
        raise DataError(
            f"{path}: the header claims {what} of {'×'.join(map(str, dims[1:]))}; this world's are "
            f"{'×'.join(map(str, shape))}"
        )
    return dims
