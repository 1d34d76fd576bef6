"""What cvaeq keeps in memory from files, and the one rule for when it is stale.

Every in-memory cache of something read from a file is a :class:`FileCache`
defined here: :data:`CHECKPOINTS` (loaded models, :func:`cvaeq.loading.load_model`)
and :data:`STORED_STORIES` (the story a checkpoint's header records,
:func:`cvaeq.loading.shipped_checkpoint`). :func:`clear` empties them all.

**The rule.** An entry is kept under the file's :class:`FileIdentity` as it
was when the file was read: its resolved path, device, inode, size,
modification time and status-change time (both in nanoseconds). A lookup
takes the file's identity again; an entry is used only when every part is
equal. So a file moved over the old one (a new inode: ``cvaeq train`` writes
that way), rewritten in place (size, times), or touched (``ctime``, which no
program can set back) is read again. Two guards cover what the timestamps
cannot see:

* a file changed less than :data:`RACY_NS` before it is read (timestamps
  advance in clock ticks of a few milliseconds, and a second write within the
  same tick would leave them equal; git calls such an entry "racily clean")
  is read but not kept;
* a file whose identity changed while it was being read is not kept either.

Each cache is a bounded LRU (least recently used dropped first), safe to use
from several threads.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "note.txt"
>>> _ = path.write_text("one")
>>> texts = FileCache("note", 2)
>>> texts.get(path, lambda p: p.read_text())
'one'
>>> _ = path.write_text("two")  # the same size, rewritten at once: read again
>>> texts.get(path, lambda p: p.read_text())
'two'
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from .errors import CheckpointError, CvaeqError

__all__ = ["FileIdentity", "FileCache", "file_identity", "clear", "CHECKPOINTS", "STORED_STORIES", "RACY_NS", "KEPT"]

T = TypeVar("T")

#: A file changed less than this before it was read is not kept (2 s: coarser than any
#: file system's timestamp tick cvaeq runs on; FAT's is 2 s).
RACY_NS = 2_000_000_000
#: Entries each cache keeps.
KEPT = 4


@dataclass(frozen=True)
class FileIdentity:
    """What says a file is the one that was read: an entry is stale when any part differs."""

    path: str
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def file_identity(path: str | os.PathLike) -> FileIdentity:
    """The :class:`FileIdentity` of ``path`` now (symlinks resolved).

    :raises OSError: the file cannot be found or read (RuntimeError: a symlink loop).
    """
    resolved = Path(path).resolve()
    st = resolved.stat()
    return FileIdentity(str(resolved), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileCache(Generic[T]):
    """A bounded LRU of what ``load(path)`` made of files, under the module's staleness rule.

    :param what: what the files are (said in errors: "cannot read the checkpoint file").
    :param size: entries kept.
    :param error: the error class a file that cannot be read is reported with.
    """

    def __init__(self, what: str, size: int = KEPT, error: type[CvaeqError] = CvaeqError) -> None:
        self.what, self.size, self.error = what, size, error
        self._entries: OrderedDict[FileIdentity, T] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.append(self)

    def __len__(self) -> int:
        return len(self._entries)

    def identity(self, path: str | os.PathLike) -> FileIdentity:
        """:func:`file_identity`, a file that cannot be read reported as ``error``."""
        try:
            return file_identity(path)
        except (OSError, RuntimeError) as e:  # gone since it was checked, or a symlink loop
            raise self.error(
                f"{path}: cannot read the {self.what} file ({getattr(e, 'strerror', None) or e})"
            ) from None

    def get(self, path: str | os.PathLike, load: Callable[[Path], T]) -> T:
        """What ``load`` makes of the file at ``path``: kept from an earlier read
        when the file is the same (the module's rule), else read now."""
        started = time.time_ns()
        before = self.identity(path)
        with self._lock:
            if before in self._entries:
                self._entries.move_to_end(before)
                return self._entries[before]
        value = load(Path(path))
        if started - before.ctime_ns < RACY_NS or self.identity(path) != before:
            return value  # changed just before or while it was read: not kept
        with self._lock:
            self._entries[before] = value
            self._entries.move_to_end(before)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


_ALL: list[FileCache] = []

#: Loaded checkpoints (:class:`cvaeq.loading.LoadedModel`), so repeated questions skip
#: the read and the network build (tens of milliseconds).
CHECKPOINTS: FileCache = FileCache("checkpoint", KEPT, CheckpointError)
#: Stories read from checkpoints' headers (each question with ``--story`` would re-parse one).
STORED_STORIES: FileCache = FileCache("checkpoint", KEPT, CheckpointError)


def clear() -> None:
    """Empty every file cache."""
    for cache in _ALL:
        cache.clear()
