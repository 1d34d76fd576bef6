"""How many CPU threads torch should use: as many as this process actually gets.

torch starts one intra-op thread per CPU it sees (``nproc``). On a machine
that other processes keep busy that is the worst choice: each parallel
operation waits at a barrier for its slowest thread, and a thread whose CPU
is taken by another process is slow by a whole time slice. Measured on the
project's 2-core machine with one competing CPU-bound process (docs/model.md,
``benchmarks/seed_vs_ours.py --compete``): training with two threads ran at a
small fraction of its one-thread speed, the two threads burning CPU waiting
for each other.

So the count is taken from what the process gets, not from ``nproc`` alone:

* the CPUs it may run on (``os.sched_getaffinity``) and its cgroup's CPU
  quota (``cpu.max``), whichever is smaller;
* less the CPUs other processes keep busy right now, measured over a short
  interval from ``/proc/stat`` (where there is none: the 1-minute load average).

:func:`pick_threads` is the rule, :func:`auto_threads` measures and applies
it, :func:`use_threads` is what a command calls with its ``--threads`` option
(given: that many; None: :func:`auto_threads`).

>>> pick_threads(available=2, busy=0.1)   # a quiet 2-core machine
2
>>> pick_threads(available=2, busy=1.0)   # another process keeps one CPU busy
1
>>> pick_threads(available=8, busy=20.0)  # oversubscribed: never below one
1
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

__all__ = ["available_cpus", "busy_cpus", "pick_threads", "auto_threads", "use_threads", "SAMPLE_SECONDS"]

#: How long :func:`auto_threads` watches the machine before deciding.
SAMPLE_SECONDS = 0.25


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


def _cpu_times(stat: Path = Path("/proc/stat")) -> tuple[float, float, int] | None:
    """(busy, total) jiffies of all CPUs and their count, from ``/proc/stat``."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    if not lines or not lines[0].startswith("cpu "):
        return None
    values = [float(v) for v in lines[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user and nice
    count = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    return total - idle, total, max(count, 1)


def busy_cpus(seconds: float = SAMPLE_SECONDS, own_cpu_seconds: float | None = None) -> float:
    """CPUs kept busy by other processes, averaged over the next ``seconds``
    (this process sleeps meanwhile); the 1-minute load average where
    ``/proc/stat`` cannot be read."""
    before = _cpu_times()
    if before is None or seconds <= 0:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    own0 = time.process_time()
    time.sleep(seconds)
    after = _cpu_times()
    own = time.process_time() - own0 if own_cpu_seconds is None else own_cpu_seconds
    if after is None or after[1] <= before[1]:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    share = (after[0] - before[0]) / (after[1] - before[1])  # fraction of all CPUs busy
    return max(share * after[2] - own / seconds, 0.0)  # less this process's own threads


def pick_threads(available: float, busy: float) -> int:
    """Threads for a process that may use ``available`` CPUs while others keep
    ``busy`` of them busy: the free CPUs, rounded to the nearest whole one, at
    least one and at most ``available``."""
    free = available - busy
    return int(max(1, min(math.floor(available), math.floor(free + 0.5))))


def _local_processes() -> int:
    """Processes of this launch sharing the machine (torchrun's ``LOCAL_WORLD_SIZE``; else 1)."""
    try:
        return max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def auto_threads(seconds: float = SAMPLE_SECONDS) -> int:
    """:func:`pick_threads` of what this process gets right now (takes ``seconds``
    to watch); under torchrun, the free CPUs are shared among the machine's
    processes of the launch."""
    share = _local_processes()
    return pick_threads(available_cpus() / share, busy_cpus(seconds) / share)


def use_threads(threads: int | None = None, seconds: float = SAMPLE_SECONDS) -> int:
    """Set torch's intra-op threads: ``threads`` when given (``--threads``),
    else :func:`auto_threads`; returns the count set."""
    import torch

    n = int(threads) if threads is not None else auto_threads(seconds)
    torch.set_num_threads(n)
    return n
