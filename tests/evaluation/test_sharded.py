"""Evaluation sharded over processes (torchrun): each process scores its share
of the batches and rank 0 reports the same JSON as one process."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from cvaeq.evaluation import draw_heldout, evaluate
from cvaeq.evaluation import run as run_module
from cvaeq.loading import LoadedModel, shipped_checkpoint
from cvaeq.story import load_story

STORY = load_story()
STORY_LOGITS = {f: np.log(STORY.table(f)) for f in STORY.factors}
N = 7


def _run(model, **kw):
    return evaluate(LoadedModel(STORY, STORY_LOGITS, model), n=N, seed=2, samples=8, batch=2, tv_particles=300,
                    truth_particles=32, progress=False, **kw)


def test_shards_give_the_same_scores_as_one_process(analytic_model, monkeypatch):
    model = analytic_model(draw_heldout(N, 2, STORY))
    whole = _run(model)
    shards: dict = {}

    def gather(rows):  # what all_gather_object gives every process, once all have run
        shards.update(rows)
        return dict(shards)

    monkeypatch.setattr(run_module, "_gather", gather)
    assert _run(model, dist_ctx=SimpleNamespace(rank=1, world_size=3)) is None
    assert _run(model, dist_ctx=SimpleNamespace(rank=2, world_size=3)) is None
    assert sorted(shards) == [2, 4]  # batches of 2 images: rank 1 took the 2nd, rank 2 the 3rd
    shared = _run(model, dist_ctx=SimpleNamespace(rank=0, world_size=3))
    assert json.dumps(shared, sort_keys=True) == json.dumps(whole, sort_keys=True)


@pytest.mark.slow
@pytest.mark.skipif(shipped_checkpoint() is None, reason="the shipped checkpoint is not installed")
def test_torchrun_two_cpu_processes_print_the_json_of_one(tmp_path):
    args = ["eval", "--n", "4", "--samples", "8", "--tv-particles", "200", "--seed", "3", "--threads", "1",
            "--json", "--quiet"]
    one = subprocess.run([sys.executable, "-m", "cvaeq", *args], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          "-m", "cvaeq", "--", *args], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.strip().splitlines() == [one.stdout.strip()]  # rank 0 alone prints, the same JSON
