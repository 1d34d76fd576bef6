import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.worlds.dsprites.factors import FACTORS

KEYS = {"world", "nll_nats", "elbo_nats", "nll_given_factors_nats", "elbo_given_factors_nats", "recon_iou", "factor_accuracy", "counterfactual", "tv", "n", "samples", "seed", "model"}
ARGS = ["--n", "2", "--samples", "4", "--tv-particles", "200", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from cvaeq.model.checkpoint import save_checkpoint
    from cvaeq.model.cvae import CausalVAE
    from cvaeq.model.networks import ArchConfig
    from cvaeq.story import load_story

    story = load_story()
    torch.manual_seed(0)
    model = CausalVAE(ArchConfig(latent_dim=story.latent_dim))
    tables = {f: np.log(story.table(f)) for f in story.factors}
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, model, story, tables, train_config={"n": 0}, epoch=0)
    return path


@pytest.fixture(scope="module")
def json_run(checkpoint):
    before = torch.get_num_threads()
    r = CliRunner().invoke(main, ["eval", "--model", str(checkpoint), "--json", *ARGS])
    torch.set_num_threads(before)
    return r


def test_json_has_every_key(json_run, checkpoint):
    assert json_run.exit_code == 0, json_run.output
    out = json.loads(json_run.stdout)
    assert KEYS <= set(out)
    assert out["model"] == str(checkpoint) and out["n"] == 2 and out["samples"] == 4 and out["seed"] == 0
    assert set(out["factor_accuracy"]) == set(FACTORS)
    cf = out["counterfactual"]
    for key in ("iou", "effectiveness"):
        assert set(cf[key]) == set(FACTORS)
        assert all(0.0 <= v <= 1.0 for v in cf[key].values())
    assert set(cf["composition"]) == {"1", "10"}
    assert out["world"] == "dsprites"
    assert set(cf["l1_truth"]) == set(FACTORS) and all(0.0 <= v <= 1.0 for v in cf["l1_truth"].values())
    for key in ("composition_l1", "composition_decoder_l1"):
        assert set(cf[key]) == {"1", "10"} and all(0.0 <= v <= 1.0 for v in cf[key].values())
    assert 0.0 <= cf["iou_mean"] <= 1.0 and 0.0 <= cf["reversibility"] <= 1.0
    assert {"interventional", "counterfactual"} <= set(out["tv"])
    assert out["elbo_nats"] >= out["nll_nats"] > 0


def test_same_seed_same_json(json_run, checkpoint):
    before = torch.get_num_threads()
    again = CliRunner().invoke(main, ["eval", "--model", str(checkpoint), "--json", *ARGS])
    torch.set_num_threads(before)
    assert again.exit_code == 0
    assert again.stdout == json_run.stdout


def test_summary_table(checkpoint):
    before = torch.get_num_threads()
    r = CliRunner().invoke(main, ["eval", "--model", str(checkpoint), *ARGS])
    torch.set_num_threads(before)
    assert r.exit_code == 0, r.output
    assert "NLL" in r.stdout and "effectiveness" in r.stdout and "posY" in r.stdout
    assert "cf L1 to truth" in r.stdout and "composition L1" in r.stdout


@pytest.mark.parametrize("content", [None, b"not a checkpoint at all"])
def test_bad_model_path_is_one_line_exit_2(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    r = CliRunner().invoke(main, ["eval", "--model", str(path), "--json"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "error:" in r.stderr


def test_no_shipped_checkpoint_says_what_to_do(monkeypatch, tmp_path):
    import cvaeq.loading as loading

    monkeypatch.setattr(loading, "WEIGHTS", tmp_path / "none")
    r = CliRunner().invoke(main, ["eval"])
    assert r.exit_code == 2
    assert "--model" in r.stderr and "cvaeq train" in r.stderr


def test_default_particles_are_those_of_an_image_query():
    from cvaeq.cli.eval import eval_command
    from cvaeq.evaluation.run import SAMPLES
    from cvaeq.query.answer import IMAGE_SAMPLES

    default = next(p.default for p in eval_command.params if p.name == "samples")
    assert default == SAMPLES == IMAGE_SAMPLES
