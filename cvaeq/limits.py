"""Bounds on what a user gives cvaeq: the files it reads and the counts it obeys.

Every file a user names (a story, an image, a checkpoint, a grid or
resampled ``.npz``) enters through :func:`checked_file` or
:func:`read_limited`: it must be a regular file (not a folder, a device such
as ``/dev/zero``, a pipe or a socket, which would be read until memory runs
out, or hang) no larger than what such a file plausibly is. Every count
(images, particles, threads, workers, seeds) has a bound here, documented in
``docs/cli.md``; the errors say the bound.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
>>> _ = p.write_text("x = 1")
>>> read_limited(p, "story", MAX_STORY_BYTES)
b'x = 1'
>>> read_limited("/dev/zero", "story", MAX_STORY_BYTES)
Traceback (most recent call last):
...
cvaeq.errors.DataError: /dev/zero: not a regular file (a device, pipe or socket); give a story file
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import CvaeqError, DataError

__all__ = [
    "checked_file",
    "read_limited",
    "check_count",
    "MAX_STORY_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_CHECKPOINT_BYTES",
    "MAX_GRID_BYTES",
    "MAX_IMAGES",
    "MAX_EVAL_IMAGES",
    "MAX_PARTICLES",
    "MAX_TV_PARTICLES",
    "MAX_THREADS",
    "MAX_WORKERS",
    "MAX_EPOCHS",
    "MAX_BATCH",
    "MAX_SEED",
]

#: Largest story file (TOML text).
MAX_STORY_BYTES = 1 << 20
#: Largest image file (``--image`` PNG or ``.npy``).
MAX_IMAGE_BYTES = 16 << 20
#: Largest checkpoint (a 200 M-parameter model with its optimizer state is ~2.4 GB).
MAX_CHECKPOINT_BYTES = 4 << 30
#: Largest grid or resampled ``.npz`` (memory-mapped, never read whole).
MAX_GRID_BYTES = 64 << 30
#: Most images drawn or trained on (``data resample --n``, ``train --n``): 4 GB of 64×64 images in memory.
MAX_IMAGES = 1_000_000
#: Most test or held-out images (``eval --n``, ``train --eval-n``).
MAX_EVAL_IMAGES = 100_000
#: Most particles of a query or of one evaluated image (``--samples``).
MAX_PARTICLES = 100_000
#: Most particles of a TV query of ``cvaeq eval`` (factors only, no images).
MAX_TV_PARTICLES = 10_000_000
#: Most CPU threads for torch (``--threads``).
MAX_THREADS = 256
#: Most rendering processes (``data build --workers``).
MAX_WORKERS = 256
#: Most epochs of one training run.
MAX_EPOCHS = 100_000
#: Largest training batch.
MAX_BATCH = 65_536
#: Largest seed (seeds are signed 64-bit in torch).
MAX_SEED = 2**63 - 1


def checked_file(path: str | os.PathLike, what: str, max_bytes: int, error: type[CvaeqError] = DataError,
                 hint: str = "") -> Path:
    """``path`` if it is a regular file of at most ``max_bytes``; else ``error``
    naming ``what`` it should have been (``hint``: what to do when it is missing)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file{'; ' + hint if hint else ''}") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
        raise error(f"{path}: cannot read the {what} file ({getattr(e, 'strerror', None) or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder; give a {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (a device, pipe or socket); give a {what} file")
    if st.st_size > max_bytes:
        raise error(f"{path}: {st.st_size:,} bytes, more than the {max_bytes:,} a {what} file may have")
    return path


def read_limited(path: str | os.PathLike, what: str, max_bytes: int, error: type[CvaeqError] = DataError,
                 hint: str = "") -> bytes:
    """The bytes of a :func:`checked_file`, read no further than ``max_bytes``
    (a file that grows meanwhile is refused, not followed)."""
    path = checked_file(path, what, max_bytes, error, hint)
    try:
        with open(path, "rb") as f:
            blob = f.read(max_bytes + 1)
    except OSError as e:
        raise error(f"{path}: cannot read the {what} file ({e.strerror})") from None
    if len(blob) > max_bytes:
        raise error(f"{path}: more than the {max_bytes:,} bytes a {what} file may have")
    return blob


def check_count(value, name: str, bound: int, low: int = 1, error: type[CvaeqError] = CvaeqError) -> int:
    """``value`` as an int if it is an integer in ``[low, bound]``; else ``error`` saying the bound.

    >>> check_count(5, "--n", 10)
    5
    >>> check_count(100, "--n", 10)
    Traceback (most recent call last):
    ...
    cvaeq.errors.CvaeqError: --n must be an integer from 1 to 10, got 100
    """
    import numpy as np

    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and low <= value <= bound
    if not ok:
        raise error(f"{name} must be an integer from {low:,} to {bound:,}, got {value!r}")
    return int(value)
