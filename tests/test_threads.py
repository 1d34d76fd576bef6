"""The thread policy: torch threads from what stays put (affinity, quota,
``--threads``, ``CVAEQ_THREADS``), never from the machine's load, for the
command line and the library alike; so the same command and seed give the
same bytes on a quiet and on a busy machine."""

import itertools
import json
import os
import pathlib

import pytest
import torch
from click.testing import CliRunner

from cvaeq import threads
from cvaeq.errors import CvaeqError
from cvaeq.threads import auto_threads, pick_threads, threads_for, use_threads


@pytest.mark.parametrize("available, processes, want", [
    (2, 1, 2), (1, 1, 1), (2.5, 1, 2), (16, 1, 16), (4, 2, 2), (3, 4, 1), (0.5, 1, 1),
])
def test_threads_are_the_cpus_the_process_may_use(available, processes, want):
    assert pick_threads(available, processes) == want


def test_cgroup_quota_is_read(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(tmp_path) is None


@pytest.fixture
def two_cpus(monkeypatch):
    """A 2-CPU process with no CVAEQ_THREADS (the tests' conftest sets it)."""
    monkeypatch.delenv("CVAEQ_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: 2.0)


def simulate_load(monkeypatch, busy: bool):
    """``/proc/stat`` and the load average of a machine whose CPUs are idle or all
    taken by other processes, counters advancing at each read as the kernel's do."""
    ticks = itertools.count(1)
    real = pathlib.Path.read_text

    def read_text(self, *a, **k):
        if str(self) == "/proc/stat":
            t = 1000 * next(ticks)
            user, idle = (t, 0) if busy else (0, t)
            return (f"cpu  {2 * user} 0 0 {2 * idle} 0 0 0 0 0 0\n"
                    f"cpu0 {user} 0 0 {idle} 0 0 0 0 0 0\ncpu1 {user} 0 0 {idle} 0 0 0 0 0 0\n")
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0) if busy else (0.0, 0.0, 0.0))


def test_the_count_does_not_follow_the_load(two_cpus, monkeypatch):
    picked = []
    for busy in (False, True, False):
        simulate_load(monkeypatch, busy)
        picked.append(auto_threads())
    assert picked == [2, 2, 2]


def test_torchrun_processes_share_the_cpus(two_cpus, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4.0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert auto_threads() == 2


def test_the_environment_variable_sets_the_count_and_is_checked(two_cpus, monkeypatch):
    monkeypatch.setenv("CVAEQ_THREADS", "1")
    assert auto_threads() == 1
    for bad in ("0", "two", "1.5", "257"):
        monkeypatch.setenv("CVAEQ_THREADS", bad)
        with pytest.raises(CvaeqError, match="CVAEQ_THREADS must be a whole number of threads from 1 to 256"):
            auto_threads()


def test_given_threads_override_the_policy(monkeypatch):
    monkeypatch.setattr(threads, "auto_threads", lambda: pytest.fail("threads were given"))
    with threads_for(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    for bad in (0, 1.5, True, "x"):
        with pytest.raises(CvaeqError, match="threads must be a whole number"):
            use_threads(bad)


def test_the_library_uses_the_clis_policy_and_restores_the_callers_count(two_cpus, monkeypatch, tmp_path):
    import cvaeq.evaluation.run as run
    import cvaeq.model.train as train_module
    import cvaeq.query.answer as answer

    monkeypatch.setattr(threads, "available_cpus", lambda: 1.0)  # the policy's count: 1
    seen: dict[str, list[int]] = {}

    def spy(name):
        return lambda *a: seen.setdefault(name, []).append(torch.get_num_threads())

    monkeypatch.setattr(answer, "_ask", spy("ask"))
    monkeypatch.setattr(run, "_evaluate", spy("evaluate"))

    class Stop(Exception):
        pass

    def stop(*a):
        spy("train")()
        raise Stop

    monkeypatch.setattr(train_module, "_setup", stop)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        answer.ask("P(shape)")
        run.evaluate(n=1)
        with pytest.raises(Stop):
            train_module.train(train_module.TrainConfig(), tmp_path / "m.safetensors")
        assert torch.get_num_threads() == 2  # the caller's count, back
        torch.set_num_threads(1)
        answer.ask("P(shape)", threads=2)  # a count given wins over the policy
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert seen == {"ask": [1, 2], "evaluate": [1], "train": [1]}


def test_a_training_run_gives_the_same_model_on_a_quiet_and_a_busy_machine(two_cpus, monkeypatch, tmp_path):
    from cvaeq.model.checkpoint import load_checkpoint
    from cvaeq.model.train import TrainConfig, train

    from .model.conftest import TINY

    monkeypatch.chdir(tmp_path)
    # batches of 128: large enough that torch splits its sums between two threads, so one
    # thread and two train different last bits here (1.5e-8 apart; with batches of 16 they agree)
    config = dict(n=256, epochs=1, batch=128, eval_n=16, seed=5, lr=3e-3, device="cpu", arch=dict(TINY))
    before = torch.get_num_threads()
    models, answers = [], []
    try:
        for busy in (False, True):
            simulate_load(monkeypatch, busy)
            out = tmp_path / f"busy{busy}.safetensors"
            train(TrainConfig(**config), out, progress=False, log=lambda m: None)
            models.append(load_checkpoint(out))
            from cvaeq.cli import main

            r = CliRunner().invoke(main, ["query", "P(scale | do(shape=heart))", "--samples", "50", "--seed", "3",
                                          "--json"])
            assert r.exit_code == 0, r.output
            answers.append(r.stdout)
    finally:
        torch.set_num_threads(before)
    a, b = (m.model.state_dict() for m in models)
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in h.items() if not any(w in k for w in ("second", "time", "per_s"))}
             for m in models for h in m.meta["history"]]
    assert strip[0] == strip[1]
    assert answers[0] == answers[1] and json.loads(answers[0])["samples"] == 50
