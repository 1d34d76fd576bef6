import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.worlds.dsprites.factors import FACTORS

KEYS = {"world", "nll_nats", "elbo_nats", "nll_given_factors_nats", "elbo_given_factors_nats", "recon_iou", "factor_accuracy", "counterfactual", "tv", "n", "samples", "seed", "model"}
ARGS = ["--n", "2", "--samples", "4", "--tv-particles", "200", "--threads", "1", "--quiet"]


def _save(path, orientation=None):
    """An untrained CausalVAE with the story's own factor tables (``orientation``: that table instead)."""
    from cvaeq.model.checkpoint import save_checkpoint
    from cvaeq.model.cvae import CausalVAE
    from cvaeq.model.networks import ArchConfig
    from cvaeq.story import load_story

    story = load_story()
    torch.manual_seed(0)
    model = CausalVAE(ArchConfig(latent_dim=story.latent_dim))
    tables = {f: np.log(story.table(f)) for f in story.factors}
    if orientation is not None:
        tables["orientation"] = np.log(orientation)
    save_checkpoint(path, model, story, tables, train_config={"n": 0}, epoch=0)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


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


def test_the_tv_to_the_story_is_the_known_answer(json_run, tmp_path):
    """The factor-level scores have known answers whatever the image model:
    the story's own tables are at TV 0 from it; a model whose orientation table
    puts 1.5/40 on each of the first 20 classes and 0.5/40 on the rest (orientation
    has no factor parents or children) differs only in P(orientation), by
    0.5 * 40 * (0.5/40) = 0.25, averaged over the story's 20 interventional
    queries: 0.0125, and its counterfactual answers, all about other factors,
    are those of the story to the bit (same particles, same seed)."""
    out = json.loads(json_run.stdout)
    assert out["tv"]["interventional"] == pytest.approx(0.0, abs=1e-12) and out["tv"]["counterfactual"] == 0.0
    skewed = _save(tmp_path / "skewed.safetensors", orientation=np.r_[np.full(20, 1.5 / 40), np.full(20, 0.5 / 40)])
    before = torch.get_num_threads()
    r = CliRunner().invoke(main, ["eval", "--model", str(skewed), "--json", *ARGS])
    torch.set_num_threads(before)
    assert r.exit_code == 0, r.output
    tv = json.loads(r.stdout)["tv"]
    assert tv["queries"] == 40
    assert tv["interventional"] == pytest.approx(0.25 / 20, abs=1e-12)
    assert tv["counterfactual"] == 0.0


def test_proxies_print_the_predictors_beside_the_true_figures(checkpoint, monkeypatch, tmp_path):
    """``--proxies``: cvaeq's predictors (here tiny ones, from an empty cache folder) read the counterfactuals."""
    from cvaeq.evaluation import predictors as P
    from cvaeq.story import load_story

    story = load_story()
    tiny = P.training_pictures(story, 0, n_train=64, n_test=16)
    real = P.predictors_for
    monkeypatch.setattr(P, "predictors_for", lambda s, **kw: real(s, **{**kw, "data": tiny, "epochs": 1}))
    monkeypatch.setenv("CVAEQ_CACHE", str(tmp_path))
    before = torch.get_num_threads()
    r = CliRunner().invoke(main, ["eval", "--model", str(checkpoint), "--proxies", "--json", *ARGS])
    table = CliRunner().invoke(main, ["eval", "--model", str(checkpoint), "--proxies", *ARGS])
    torch.set_num_threads(before)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["proxies"]["effectiveness"]) == set(FACTORS)
    assert out["proxies"]["predictors"]["trained_on"] == 64 and out["ci_about"]["n_floor"] == 16
    assert len(list((tmp_path / "predictors").glob("dsprites-*.safetensors"))) == 1  # kept for the next run
    assert table.exit_code == 0 and "eff. predictors" in table.stdout and "(on the truth)" in table.stdout
