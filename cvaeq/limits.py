"""Bounds on what a user gives cvaeq: the files it reads and writes, the counts it obeys.

Every file a user names (a story, an image, a checkpoint, a grid or
resampled ``.npz``) enters through :func:`checked_file` or
:func:`read_limited`: it must be a regular file (not a folder, a device such
as ``/dev/zero``, a pipe or a socket, which would be read until memory runs
out, or hang) no larger than what such a file plausibly is. Every count
(images, particles, threads, workers, seeds) has a bound here, documented in
``docs/cli.md``; the errors say the bound. A question's particles are also
bounded by the memory they take (:func:`check_question_cost`): a question
that decodes a picture per particle and world costs far more than one about
factors.

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
    "checked_output",
    "checked_folder",
    "read_limited",
    "check_count",
    "question_cost",
    "check_question_cost",
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
    "MAX_QUESTION_BYTES",
    "BYTES_PER_PIXEL",
    "BYTES_PER_WORLD_PIXEL",
    "BYTES_PER_VALUE",
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
#: Most memory one question may take (``cvaeq query``, :func:`cvaeq.ask`, the
#: explorer), as :func:`question_cost` estimates it from the work asked for,
#: before any is done: 2 GiB.
MAX_QUESTION_BYTES = 2 << 30
#: Bytes a question holds per particle and pixel for the first world whose
#: image it computes (the abducted or drawn picture: its uniform noise, float64
#: probabilities, the decoder's logits and activations, the replayed picture).
#: Measured peaks were 25-37 bytes (docs/cli.md, "Question size").
BYTES_PER_PIXEL = 40
#: Bytes per particle and pixel for each further world whose image is computed
#: (the world's picture is kept for the answer; measured 3.3).
BYTES_PER_WORLD_PIXEL = 5
#: Bytes per particle for each number a world holds about the factors and Z
#: (a categorical factor's noise has one Gumbel per class; measured 7.2).
BYTES_PER_VALUE = 8


def checked_file(
    path: str | os.PathLike, what: str, max_bytes: int, error: type[CvaeqError] = DataError, hint: str = ""
) -> Path:
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


def read_limited(
    path: str | os.PathLike, what: str, max_bytes: int, error: type[CvaeqError] = DataError, hint: str = ""
) -> bytes:
    """The bytes of a :func:`checked_file`, read no further than ``max_bytes``.

    Reads what the file holds (its size when opened, plus one byte to notice
    growth), never a buffer of ``max_bytes``: Python allocates a read's whole
    length up front, and a 4 MB checkpoint read with its 4 GiB bound failed
    under a 3 GB address-space limit. A file that grows meanwhile is refused,
    not followed.
    """
    path = checked_file(path, what, max_bytes, error, hint)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):  # replaced between the check and the open
                raise error(f"{path}: not a regular file (a device, pipe or socket); give a {what} file")
            size = min(st.st_size, max_bytes)
            blob = f.read(size + 1)
    except OSError as e:
        raise error(f"{path}: cannot read the {what} file ({e.strerror}); {hint or 'check the path'}") from None
    if len(blob) > size:
        if len(blob) > max_bytes:
            raise error(f"{path}: more than the {max_bytes:,} bytes a {what} file may have")
        raise error(f"{path}: the {what} file grew while it was read; read it again once it is written")
    return blob


def checked_output(path: str | os.PathLike, what: str = "output", error: type[CvaeqError] = DataError) -> Path:
    """The path to write a ``what`` file at, if it is a new name or a regular file; else ``error``.

    Writers replace their file by an atomic rename, which would turn a device
    (``/dev/null``), a pipe, a socket or a folder's name into a regular file:
    those are refused, as are links to them and links to nothing. A link to a
    regular file gives the file it points to, so the link stays and its
    target is rewritten, as ``open(path, "w")`` would do.

    >>> import tempfile, pathlib, os
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> checked_output(d / "new.png") == d / "new.png"
    True
    >>> os.mkfifo(d / "pipe")
    >>> checked_output(d / "pipe", "PNG")
    Traceback (most recent call last):
    ...
    cvaeq.errors.DataError: .../pipe: not a regular file (a device, pipe or socket); cvaeq writes its PNG only to a
    new name or a regular file; choose another path
    """
    path = Path(path)
    where = "choose another path"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except NotADirectoryError:
        raise error(f"{path}: cannot write there: a part of its folder is a file, not a folder; {where}") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
        raise error(f"{path}: cannot write there ({getattr(e, 'strerror', None) or e}); {where}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise error(
                f"{path}: a link to nothing ({os.readlink(path)}); cvaeq does not write through it; {where}"
            ) from None
        except (OSError, ValueError) as e:
            raise error(f"{path}: cannot write there ({getattr(e, 'strerror', None) or e}); {where}") from None
        if stat.S_ISREG(st.st_mode):
            return Path(os.path.realpath(path))
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder; give a file name for the {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(
            f"{path}: not a regular file (a device, pipe or socket); cvaeq writes its {what} only to a "
            f"new name or a regular file; {where}"
        )
    return path


def checked_folder(path: str | os.PathLike, what: str = "output", error: type[CvaeqError] = DataError) -> Path:
    """``path`` if it is a folder (or a link to one) or a new name, where ``what``
    files will be written (each of them then goes through :func:`checked_output`);
    else ``error``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> checked_folder(d) == d, checked_folder(d / "new") == d / "new"
    (True, True)
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise error(f"{path}: a link to nothing ({os.readlink(path)}); give a folder for the {what}") from None
        return path
    except (OSError, ValueError) as e:
        raise error(
            f"{path}: cannot write there ({getattr(e, 'strerror', None) or e}); give a folder for the {what}"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        kind = "a file" if stat.S_ISREG(st.st_mode) else "a device, pipe or socket"
        raise error(f"{path}: is {kind}, not a folder; give a folder (new or existing) for the {what}")
    return path


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


def question_cost(
    particles: int, *, pixels: int = 0, image_worlds: int = 0, values: int = 0, nodes: int = 0, worlds: int = 1
) -> int:
    """The memory (bytes) a question is expected to take at its peak, from its work.

    :param particles: the particles (``--samples``).
    :param pixels: pixels of one image (0: the question decodes none).
    :param image_worlds: the worlds in which each particle's image is computed:
        the abduction's (it draws or explains the picture) and each world whose
        interventions change it.
    :param values: numbers per particle of the noise of the factors and Z
        (a categorical factor: one Gumbel per class; Z: its dimensions, twice).
    :param nodes: the nodes other than the image, whose values each world holds.
    :param worlds: worlds predicted, the factual one included.

    ``particles × (pixels × (BYTES_PER_PIXEL + BYTES_PER_WORLD_PIXEL × (image_worlds - 1))
    + BYTES_PER_VALUE × (values + nodes × worlds))``; the constants were
    measured (docs/cli.md, "Question size"), with a margin.

    >>> question_cost(1000, values=113, nodes=5, worlds=2)     # a dSprites factor question: ~1 MB
    984000
    >>> # P(X | do(...), X=img), in MiB:
    >>> question_cost(1000, pixels=4096, image_worlds=2, values=125, nodes=6, worlds=2) // 2**20
    176
    """
    per_pixel = BYTES_PER_PIXEL + BYTES_PER_WORLD_PIXEL * max(image_worlds - 1, 0) if image_worlds > 0 else 0
    held = int(values) + int(nodes) * max(int(worlds), 1)
    return int(particles) * (int(pixels) * per_pixel + BYTES_PER_VALUE * held)


def check_question_cost(
    particles: int,
    *,
    pixels: int = 0,
    image_worlds: int = 0,
    values: int = 0,
    nodes: int = 0,
    worlds: int = 1,
    error: type[CvaeqError] = CvaeqError,
    budget: int | None = None,
) -> int:
    """:func:`question_cost`, if it is within ``budget`` (default
    :data:`MAX_QUESTION_BYTES`); else ``error`` saying the cost, the bound and
    the most particles that would fit. Call it before any work starts.

    >>> check_question_cost(1_000_000, pixels=4096, image_worlds=2, values=125, nodes=6, worlds=2)
    Traceback (most recent call last):
    ...
    cvaeq.errors.CvaeqError: this question would take about 173 GiB (1,000,000 particles, each decoding a 4,096-pixel
    image in 2 worlds), more than the 2 GiB one question may use; ask for at most 11,581 samples
    """
    budget = MAX_QUESTION_BYTES if budget is None else int(budget)
    kw = dict(pixels=pixels, image_worlds=image_worlds, values=values, nodes=nodes, worlds=worlds)
    cost = question_cost(particles, **kw)
    if cost <= budget:
        return cost
    per_particle = max(question_cost(1, **kw), 1)
    fit = budget // per_particle
    work = (
        (
            f"{particles:,} particles, each decoding a {pixels:,}-pixel image in {image_worlds} world"
            f"{'s' if image_worlds != 1 else ''}"
        )
        if image_worlds and pixels
        else (f"{particles:,} particles in {worlds} world{'s' if worlds != 1 else ''}")
    )
    more = worlds > 2 or image_worlds > 2  # a question about several worlds may drop some
    todo = (
        (f"ask for at most {fit:,} samples" + (", or about fewer worlds" if more else ""))
        if fit >= 1
        else ("ask about fewer worlds")
    )
    raise error(
        f"this question would take about {_size(cost)} ({work}), more than the {_size(budget)} one "
        f"question may use; {todo}"
    )


def _size(n: int) -> str:
    """Bytes as GiB (or MiB below one GiB), rounded for a message."""
    if n >= 1 << 30:
        g = n / (1 << 30)
        return f"{g:.0f} GiB" if g >= 10 or g == int(g) else f"{g:.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB"
