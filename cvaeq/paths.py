"""Where cvaeq keeps what it builds: ``$CVAEQ_HOME``, else ``~/.cache/cvaeq``."""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["home", "default_grid_path", "grid_filename", "atomic_path"]

GRID_FILENAME = "dsprites_rendered_64x64.npz"
REAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
#: The world whose cache files keep the names they had before worlds existed.
_FIRST_WORLD = "dsprites"


def home() -> Path:
    """The cache folder; created on first use."""
    root = Path(os.environ.get("CVAEQ_HOME") or Path.home() / ".cache" / "cvaeq")
    root.mkdir(parents=True, exist_ok=True)
    return root


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
        real = home() / REAL_FILENAME
        if real.exists():
            return real
    return home() / grid_filename(world_name)


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
