"""How many CPU threads torch uses: a count fixed by what is stable, never by load.

float32 sums (a matrix product, a reduction, a gradient summed over a batch)
are split among torch's intra-op threads, so the thread count decides their
order and so their last bits. Training amplifies those bits over thousands of
steps: ``cvaeq train --story pong ...`` gave 257.52 / 37.76 / IoU 0.881 with
one thread and 257.50 / 37.45 / 0.884 with two (issue 26). A count picked
from the machine's momentary load (as an earlier version did, from
``/proc/stat``) therefore made the same command give different models on a
quiet and a busy day. So the count comes only from facts that stay put while
the process runs:

* ``threads`` given by the caller (``--threads N`` on the command line, the
  ``threads=`` argument of :func:`cvaeq.ask`, :func:`cvaeq.evaluation.evaluate`,
  :func:`cvaeq.model.train.train`);
* else the ``CVAEQ_THREADS`` environment variable, when set;
* else the CPUs this process may run on (``os.sched_getaffinity``) capped by
  its cgroup's CPU quota (``cpu.max``), rounded down, at least one; under
  torchrun (``LOCAL_WORLD_SIZE``) each process of the machine gets its share.

The command line and the library follow this one rule (:func:`pick_threads`).
On a machine that other work keeps busy, fewer threads run faster (a thread
whose CPU is taken makes the others wait for it); say so with ``--threads 1``
or ``CVAEQ_THREADS=1``: a stable choice, made by the user, not by the load.
Which results are identical across thread counts and which agree only to a
tolerance is written in docs/cli.md ("Determinism").

>>> pick_threads(available=2)              # a 2-core machine, busy or not
2
>>> pick_threads(available=2.5)            # a cgroup quota of 2.5 CPUs
2
>>> pick_threads(available=8, processes=3)  # torchrun, 3 processes on the machine
2
>>> pick_threads(available=2, given=1)     # --threads 1
1
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CvaeqError

__all__ = ["ENV", "available_cpus", "pick_threads", "auto_threads", "use_threads", "threads_for"]

#: The environment variable that sets the count where no ``threads`` is given.
ENV = "CVAEQ_THREADS"


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs the cgroup (v2 ``cpu.max``) allows, or None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(float(quota) / float(period), 1.0)
    except (ValueError, ZeroDivisionError):
        return None


def available_cpus() -> float:
    """CPUs this process may use: its affinity set, capped by its cgroup's quota."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cpus = float(os.cpu_count() or 1)
    quota = _cgroup_quota()
    return min(cpus, quota) if quota is not None else cpus


def _check(threads, what: str) -> int:
    from .limits import MAX_THREADS

    try:
        n = int(threads)
        ok = n == threads or (isinstance(threads, str) and str(n) == threads.strip())
    except (TypeError, ValueError):
        ok = False
    if isinstance(threads, bool) or not ok or not 1 <= n <= MAX_THREADS:
        raise CvaeqError(f"{what} must be a whole number of threads from 1 to {MAX_THREADS}, not {threads!r}")
    return n


def pick_threads(available: float, processes: int = 1, given: int | None = None) -> int:
    """The thread count: ``given`` when not None, else the ``available`` CPUs
    shared among ``processes`` processes, rounded down, at least one."""
    if given is not None:
        return _check(given, "threads")
    return int(max(1, math.floor(available / max(processes, 1))))


def _local_processes() -> int:
    """Processes of this launch sharing the machine (torchrun's ``LOCAL_WORLD_SIZE``; else 1)."""
    try:
        return max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def auto_threads() -> int:
    """The count when the caller gives none: ``CVAEQ_THREADS``, else
    :func:`pick_threads` of :func:`available_cpus` (no load is read)."""
    env = os.environ.get(ENV)
    if env is not None and env.strip():
        return _check(env, ENV)
    return pick_threads(available_cpus(), _local_processes())


def use_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads for the rest of the process (a command):
    ``threads`` when given (``--threads``), else :func:`auto_threads`; returns the count."""
    import torch

    n = pick_threads(0, given=threads) if threads is not None else auto_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextmanager
def threads_for(threads: int | None = None) -> Iterator[int]:
    """Torch's intra-op threads as :func:`use_threads` picks them, for one
    library call (``ask``, ``evaluate``, ``train``); the caller's count is
    restored afterwards.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with threads_for(1) as n:
    ...     n, torch.get_num_threads()
    (1, 1)
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    before = torch.get_num_threads()
    n = use_threads(threads)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
