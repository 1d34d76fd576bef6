"""Where cvaeq keeps what it builds: ``$CVAEQ_HOME``, else ``~/.cache/cvaeq``."""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["home", "default_grid_path", "atomic_path"]

GRID_FILENAME = "dsprites_rendered_64x64.npz"
REAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"


def home() -> Path:
    """The cache folder; created on first use."""
    root = Path(os.environ.get("CVAEQ_HOME") or Path.home() / ".cache" / "cvaeq")
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_grid_path() -> Path:
    """The grid file cvaeq loads when none is named: the real file if the user
    put one in the cache, else the rendered one."""
    real = home() / REAL_FILENAME
    return real if real.exists() else home() / GRID_FILENAME


@contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``final``; rename it into place only if the
    block succeeds, so a crash or Ctrl-C never leaves a half-written file.
    The file ends with the permissions a plain ``open(final, "w")`` would give
    it: those of the file it replaces, else the umask's (the temporary file
    itself is private to the user).

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = pathlib.Path(tmp).write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or ".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(final))
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _mode_for(final: Path) -> int:
    """Permission bits a newly written ``final`` should have."""
    try:
        return stat.S_IMODE(final.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
