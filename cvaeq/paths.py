"""Where cvaeq keeps what it builds: ``$CVAEQ_HOME``, else ``~/.cache/cvaeq``."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["home", "default_grid_path", "grid_filename", "atomic_path", "safe_name", "cache_path", "output_lock"]

GRID_FILENAME = "dsprites_rendered_64x64.npz"
REAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
#: The world whose cache files keep the names they had before worlds existed.
_FIRST_WORLD = "dsprites"


def home() -> Path:
    """The cache folder; created on first use."""
    root = Path(os.environ.get("CVAEQ_HOME") or Path.home() / ".cache" / "cvaeq")
    root.mkdir(parents=True, exist_ok=True)
    return root


def safe_name(name: str) -> str:
    """``name`` if it is safe in a file name (letters, digits, ``_ . -``, not
    starting with a dot, at most 64 characters), else ``story-`` and a digest
    of it: names come from files, and must never walk out of a folder.

    >>> safe_name("default"), safe_name("x/../../etc")[:6]
    ('default', 'story-')
    """
    import hashlib
    import re

    if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}", name):
        return name
    return "story-" + hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def cache_path(filename: str) -> Path:
    """``home() / filename`` for a file name built from names that came from
    files (a world's, a story's): anything but a plain file name in the cache
    folder (a separator, ``..``, a leading dot, a NUL) is refused, so no name
    writes outside ``$CVAEQ_HOME``.

    >>> cache_path("../x")
    Traceback (most recent call last):
    ...
    cvaeq.errors.CvaeqError: '../x' is not a plain file name; cvaeq writes only inside its cache folder
    """
    from .errors import CvaeqError

    if (
        not filename
        or filename.startswith(".")
        or any(c in filename for c in "/\\\0")
        or Path(filename).name != filename
        or len(filename) > 255
    ):
        raise CvaeqError(f"{filename!r} is not a plain file name; cvaeq writes only inside its cache folder")
    return home() / filename


def grid_filename(world_name: str | None = None) -> str:
    """File name of a world's rendered grid in the cache (world names are
    checked to be plain names, :class:`cvaeq.world.World`)."""
    if world_name in (None, _FIRST_WORLD):
        return GRID_FILENAME
    return f"{world_name}_rendered.npz"


def default_grid_path(world_name: str | None = None) -> Path:
    """The grid file cvaeq loads for a world when none is named (None: dSprites):
    for dSprites the real file if the user put one in the cache, else the
    rendered one."""
    if world_name in (None, _FIRST_WORLD):
        real = cache_path(REAL_FILENAME)
        if real.exists():
            return real
    return cache_path(grid_filename(world_name))


@contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``final``; rename it into place only if the
    block succeeds, so a crash or Ctrl-C never leaves a half-written file.
    The file ends with the permissions a plain ``open(final, "w")`` would give
    it: those of the file it replaces, else the umask's (the temporary file
    itself is private to the user).

    The one place cvaeq writes a file: ``final`` must be a new name or a
    regular file (:func:`cvaeq.limits.checked_output`), checked before the
    block runs and again just before the rename, so no output ever replaces
    a device, a pipe, a socket or a folder; a link to a regular file is
    written through (the link stays).

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = pathlib.Path(tmp).write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
    """
    from .errors import DataError
    from .limits import checked_output

    final = checked_output(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or ".tmp", dir=final.parent)
    except (FileExistsError, NotADirectoryError):
        raise DataError(
            f"{final}: cannot write there: a part of its folder {final.parent} is a file, "
            "not a folder; choose another path"
        ) from None
    except OSError as e:
        raise DataError(f"{final}: cannot write there ({e.strerror}); choose another path") from None
    except ValueError:  # a NUL byte in the name
        raise DataError(f"{str(final)!r} is not a valid file name; choose another path") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(final))
        checked_output(final)  # again: something may have been put there meanwhile
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextmanager
def output_lock(*finals: str | os.PathLike):
    """Hold an exclusive lock on output files for a long-running writer (training),
    so that a second writer of the same file is refused with one line instead
    of both running and the last silently winning; then remove temporary files
    a killed writer left beside them (:func:`atomic_path`'s ``.NAME.*.tmp``).

    The lock is an advisory ``fcntl.flock`` on ``.NAME.lock`` beside the first
    file; the lock file stays (removing it would race), the lock goes with the
    process, however it ends. Every output is checked first
    (:func:`cvaeq.limits.checked_output`), so a long run never starts only to
    find it may not write its file.

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with output_lock(d / "m.safetensors"):
    ...     with output_lock(d / "m.safetensors"):
    ...         pass
    Traceback (most recent call last):
    ...
    cvaeq.errors.CvaeqError: ... another process is writing it ...
    """
    import fcntl

    from .errors import CvaeqError
    from .limits import checked_output

    finals = tuple(checked_output(f, "output", CvaeqError) for f in finals)
    first = Path(finals[0])
    lock = first.parent / f".{first.name}.lock"
    try:
        first.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CvaeqError(f"{lock}: the lock file is not a regular file; remove it, or choose another output")
    except OSError as e:
        raise CvaeqError(f"{first}: cannot write there ({e.strerror}); choose another path") from None
    except ValueError:  # a NUL byte in the name
        raise CvaeqError(f"{str(first)!r} is not a valid file name; choose another path") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CvaeqError(
                f"{first}: another process is writing it (lock {lock}); wait for it to finish or choose another output"
            ) from None
        for final in map(Path, finals):
            for stale in final.parent.glob(f".{final.name}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        yield
    finally:
        os.close(fd)  # releases the lock


def _mode_for(final: Path) -> int:
    """Permission bits a newly written ``final`` should have."""
    try:
        return stat.S_IMODE(final.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
