"""The documented commands with the seed_mlp family: ``cvaeq train --family seed_mlp``, then ``cvaeq eval --model``."""

import json

import pytest
import torch
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.model.checkpoint import load_checkpoint
from cvaeq_seedmlp import SeedMLP


@pytest.fixture(scope="module")
def trained(registered, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "seed.safetensors"
    before = torch.get_num_threads()
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--family",
            "seed_mlp",
            "--arch",
            "hidden=16,z_dim=5",
            "--n",
            "128",
            "--epochs",
            "1",
            "--batch",
            "64",
            "--eval-n",
            "16",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    return out, res


def test_train_family_seed_mlp_writes_a_seed_mlp_checkpoint(trained):
    out, res = trained
    assert res.stdout.strip() == str(out)
    ckpt = load_checkpoint(out)
    assert ckpt.family == "seed_mlp" and isinstance(ckpt.model, SeedMLP)
    assert ckpt.meta["arch"] == {"hidden": 16, "z_dim": 5, "aux_weight": 10.0}
    assert ckpt.model.latent_dim == 5 and ckpt.story.latent_dim == 6  # z_dim is the model's, not the story's
    assert "held-out -ELBO" in res.stderr


def test_bad_arch_is_exit_2_one_line(registered, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--family",
            "seed_mlp",
            "--arch",
            "channels=4",
            "--n",
            "50",
            "--out",
            str(tmp_path / "m.safetensors"),
        ],
    )
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "unknown key 'channels'" in res.stderr


def test_eval_scores_a_seed_mlp_checkpoint(trained):
    out, _ = trained
    before = torch.get_num_threads()
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            str(out),
            "--json",
            "--n",
            "2",
            "--samples",
            "4",
            "--tv-particles",
            "200",
            "--threads",
            "1",
            "--quiet",
        ],
    )
    torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    figures = json.loads(res.stdout)
    assert figures["model"] == str(out) and figures["n"] == 2
    assert set(figures["factor_accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    assert 0 <= figures["counterfactual"]["iou_mean"] <= 1
