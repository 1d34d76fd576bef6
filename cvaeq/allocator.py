"""Keep freed image-sized buffers in the process instead of returning them to the OS.

An image query works on a handful of ``[particles, H, W]`` float64 arrays
(100 particles of 64×64: 3.3 MB each), allocated and freed a dozen times per
query. glibc's ``malloc`` serves blocks that large with ``mmap`` and gives
them back with ``munmap`` on ``free``, so every such array costs ~800 fresh
pages, each a page fault and a zeroing by the kernel before the arithmetic
starts. Profiled on the project's 2-core machine (``benchmarks/ask_latency.py``),
that was a third of an image counterfactual's time: 34 ms with one thread
against 24 ms when the blocks stayed in the heap.

:func:`keep_freed_memory` raises glibc's mmap threshold (blocks below it come
from the heap and are reused) to :data:`MMAP_BYTES` and its trim threshold
(free heap memory above it is returned to the OS) to :data:`KEEP_BYTES`. The
cost is bounded: the process keeps at most that much freed memory (plus what
it still uses). The trim threshold must exceed what one question frees at
the heap's top: at 32 MiB, an image counterfactual on the 64×64×3 colour
world (100 particles; the decoder's output alone is 20 MB, and ~80 MB is
live at its peak) still had 5,000-12,000 pages faulted afresh per question
(``benchmarks/colour_counterfactual.py``, 2 threads: 86-90 ms a question),
none in most at 64 MiB and above (52-70 ms, the machine noisy; at 128 MiB, 557 pages over 30
questions, a few hundred in three of them).
It is called by the engine's entry points, once per process; elsewhere
(not glibc, e.g. macOS or musl) it does nothing. ``CVAEQ_KEEP_FREED_MEMORY=0``
turns it off.

What a big question frees is not all returned by ``free`` even so: its
arrays below the mmap threshold come from the heap, and a heap with a few
live blocks above freed ones cannot shrink (a 1,000,000-particle factor
question left the process 230 MB larger after its answer was dropped).
:func:`release_freed_memory` (glibc's ``malloc_trim``) hands every free page
back; questions that were estimated to be big call it when they end
(:func:`cvaeq.query.answer.answer_query`).

>>> keep_freed_memory() in (True, False)   # True where glibc's mallopt took it
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory", "release_freed_memory", "KEEP_BYTES", "MMAP_BYTES"]

#: The mmap threshold set (glibc caps it at 32 MiB on 64-bit systems): arrays up to
#: this size come from the heap, and are reused.
MMAP_BYTES = 32 * 1024 * 1024

#: The trim threshold set: up to this much free heap is kept (the module's doc says why
#: so much).
KEEP_BYTES = 128 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3

_done: bool | None = None


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (:data:`MMAP_BYTES`, :data:`KEEP_BYTES`), once per
    process. Returns whether they were set (False where there is no glibc, or
    when ``CVAEQ_KEEP_FREED_MEMORY=0``)."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("CVAEQ_KEEP_FREED_MEMORY", "1").strip() == "0":
        return _done
    try:
        mallopt = _libc().mallopt
    except AttributeError:  # no libc, or not glibc
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES))
    return _done


def release_freed_memory() -> bool:
    """Return the heap's free pages to the system (glibc's ``malloc_trim(0)``):
    after a big question, so that the process shrinks back to what it still
    uses. Returns whether glibc did it (False elsewhere: nothing to do).

    >>> release_freed_memory() in (True, False)
    True
    """
    try:
        trim = _libc().malloc_trim
    except AttributeError:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)  # returns 1 if memory was released, 0 if there was none to release
    return True
