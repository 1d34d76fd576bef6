"""The thread policy: torch threads from the CPUs the process actually gets."""

import subprocess
import sys

import pytest
import torch

from cvaeq import threads
from cvaeq.threads import busy_cpus, pick_threads, use_threads


@pytest.mark.parametrize("available, busy, want", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 3.6, 1), (16, 4.2, 12), (1, 0.0, 1), (2.5, 0.0, 2),
])
def test_threads_are_the_free_cpus(available, busy, want):
    assert pick_threads(available, busy) == want


def test_proc_stat_and_cgroup_quota_are_read(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\n")
    busy, total, count = threads._cpu_times(stat)
    assert (busy, total, count) == (150.0, 1000.0, 2)
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(tmp_path) is None


def test_torchrun_processes_share_the_free_cpus(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4.0)
    monkeypatch.setattr(threads, "busy_cpus", lambda seconds: 0.0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.auto_threads() == 2


def test_a_busy_competitor_is_seen():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert busy_cpus(0.5) >= 0.7  # the competitor's CPU (and anyone else's)
    finally:
        hog.kill()
        hog.wait()


def test_given_threads_override_the_policy(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "auto_threads", lambda seconds=0: pytest.fail("--threads was given"))
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
