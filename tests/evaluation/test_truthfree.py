"""The figures that need no renderer: on a world of labelled files, and beside the true ones on its
rendered twin (where they must tell a good model from a broken one as the truth does)."""

import numpy as np
import pytest

from cvaeq.cli.eval import summary
from cvaeq.evaluation import evaluate
from cvaeq.evaluation import predictors as P
from cvaeq.evaluation.truthfree import EVIDENCE, KEPT, WHY_NO_TRUTH, story_targets
from cvaeq.loading import LoadedModel
from cvaeq.plugins import get_plugin_manager
from cvaeq.story import story_from_text

from .toyworlds import FILES, RENDERED, STORY, Oracle, ToyWorlds


@pytest.fixture(scope="module")
def stories():
    pm = get_plugin_manager()
    plugin = ToyWorlds()
    pm.register(plugin, name="toy-tf-truthfree")
    try:
        yield {w: story_from_text(STORY.format(world=w)) for w in ("toy_tf_blocks", "toy_tf_files")}
    finally:
        pm.unregister(plugin)


@pytest.fixture(scope="module")
def pred(stories):
    story = stories["toy_tf_files"]
    return P.train_predictors(story, *P.training_pictures(story), seed=0, epochs=6, progress=False)


def _eval(story, model, pred, **kw):
    return evaluate(LoadedModel(story, None, model), n=12, samples=8, tv_particles=100, truth_particles=16,
                    progress=False, threads=1, proxies=pred, **kw)


@pytest.fixture(scope="module")
def files_scores(stories, pred):
    return _eval(stories["toy_tf_files"], Oracle(FILES), pred)


def test_a_world_without_a_renderer_reports_only_the_truth_free_figures_and_says_why(files_scores):
    r = files_scores
    assert r["renderer"] is False and r["truth"] == WHY_NO_TRUTH and r["evidence"] == EVIDENCE
    assert "counterfactual" not in r and "factor_accuracy" not in r  # nothing that needs a truth
    tf = r["truthfree"]
    names = ["kind", "x", "y"]
    assert list(tf["effectiveness"]) == names and all(list(v) == names for v in tf["effectiveness"].values())
    assert tf["measure"] == {"kind": "accuracy", "x": "accuracy", "y": "accuracy"}
    # an oracle decoder: every counterfactual reads as the SCM says, as often as real pictures do
    for f in names:
        for g in names:
            if (f, g) != ("kind", "x"):
                assert tf["effectiveness"][f][g] >= tf["floor"][g] - 0.05
    # x, kind's descendant, has a spread counterfactual under the story's Gumbel-max mechanism: a particle's
    # x matches its paired target only as often as two independent draws agree (well above chance, 1/4)
    assert 0.4 < tf["effectiveness"]["kind"]["x"] < 1.0
    # the same questions asked of the picture alone: the oracle's pictures say their factors, so alike
    pic = tf["effectiveness_picture_only"]
    assert all(pic[f][g] == pytest.approx(tf["effectiveness"][f][g], abs=0.1) for f in names for g in names)
    # exact abduction: the null intervention through the engine gives the evidence back, pixel for pixel
    assert tf["composition_l1"] == {"1": 0.0, "10": 0.0}
    assert tf["composition_decoder_l1"] == {"1": 0.0, "10": 0.0}  # the oracle's decoder draws the picture
    # x and y cause nothing: there and back gives the evidence; kind's descendant x is re-drawn on the way
    # back (its noise abducted from the counterfactual picture, not remembered), as the story's own would be
    assert tf["reversibility_l1"]["x"] == 0.0 and tf["reversibility_l1"]["y"] == 0.0
    assert tf["bits_per_dim"] == pytest.approx(tf["nll_nats"] / (48 * np.log(2)))
    # every figure has its interval, over the n = 12 test pictures
    assert r["ci_about"]["n"] == 12 and r["ci_about"]["n_floor"] == 60
    lo, hi = r["ci"]["truthfree"]["effectiveness"]["kind"]["kind"]
    assert lo <= tf["effectiveness"]["kind"]["kind"] <= hi
    assert r["ci"]["truthfree"]["composition_l1"]["10"] == [0.0, 0.0]
    assert set(r["ci"]["truthfree"]["floor"]) == set(names)
    # the factor proposal: its ESS a fraction of the particles, its posterior the labelled class's probability
    prop = tf["proposal"]
    assert 0 < prop["ess_fraction"] <= 1 and set(prop) == {"ess_fraction", *names}
    assert all(0.5 < prop[f] <= 1.0 for f in names)  # the oracle's pictures say their factors
    lo, hi = r["ci"]["truthfree"]["proposal"]["ess_fraction"]
    assert lo <= prop["ess_fraction"] <= hi


def test_the_targets_are_pass_fail_lines(files_scores):
    t = {line["target"]: line for line in files_scores["targets"]}
    # y is not reached by do(kind) (not a descendant): it must be kept; x is kind's descendant: no kept line
    assert f"under do(kind), y kept >= {KEPT}" in t and "under do(kind), x kept >= 0.95" not in t
    assert t["composition through the engine exactly 0"]["pass"] is True
    assert all(line["pass"] for line in files_scores["targets"])
    text = summary(files_scores)
    assert "no renderer" in text and "PASS  composition through the engine exactly 0" in text
    assert "do(kind)" in text and "floor (real held out)" in text and "[" in text
    assert text.splitlines()[-1] == (
        "[lo, hi]   95% percentile bootstrap intervals: 1000 resamples of the n = 12 test pictures; "
        "the floor: of its n = 60 held-out pictures"
    )


def test_a_decoder_that_ignores_a_factor_fails_its_effectiveness_and_its_target(stories, pred, files_scores):
    r = _eval(stories["toy_tf_files"], Oracle(FILES, ignore="y"), pred)
    tf = r["truthfree"]
    # do(y = v) draws y at class 0 whatever v is: read as v only where v is 0 (a third of the draws)
    assert tf["effectiveness"]["y"]["y"] < 0.6 and files_scores["truthfree"]["effectiveness"]["y"]["y"] >= 0.95
    assert max(tf["reversibility_l1"].values()) > 0
    failed = [line["target"] for line in r["targets"] if not line["pass"]]
    assert "under do(x), y kept >= 0.95" in failed


def test_on_a_rendered_world_the_proxies_stand_beside_the_true_figures_and_track_them(stories, pred):
    story = stories["toy_tf_blocks"]
    good = _eval(story, Oracle(RENDERED), pred)
    bad = _eval(story, Oracle(RENDERED, ignore="x"), pred)
    for r in (good, bad):
        p = r["proxies"]
        assert set(p) >= {"effectiveness", "effectiveness_truth", "floor", "truthfree", "about"}
        # the predictors read the true counterfactual pictures as well as they read real ones
        assert all(p["effectiveness_truth"][f] >= p["floor"][f] - 0.05 for f in p["floor"])
        # and under do(kind) the story's own answer matches x's spread targets about as often as the oracle's
        tt = p["truthfree"]
        assert tt["effectiveness_truth"]["kind"]["x"] < 1.0
        assert r["ci"]["proxies"]["effectiveness"]["x"][0] <= p["effectiveness"]["x"] <= r["ci"]["proxies"]["effectiveness"]["x"][1]
    # the true figure and the proxy agree on which model is broken, and by about as much
    true_good, true_bad = good["counterfactual"]["iou"]["x"], bad["counterfactual"]["iou"]["x"]
    proxy_good, proxy_bad = good["proxies"]["effectiveness"]["x"], bad["proxies"]["effectiveness"]["x"]
    assert true_good == 1.0 and true_bad < 0.6 and proxy_good >= 0.95 and proxy_bad < 0.6
    assert bad["counterfactual"]["effectiveness"]["x"] < 0.6  # the model's own reader says so too
    # the true figures are the same with or without the proxies (their own random stream)
    plain = evaluate(LoadedModel(story, None, Oracle(RENDERED)), n=12, samples=8, tv_particles=100,
                     truth_particles=16, progress=False, threads=1)
    assert {k: v for k, v in good.items() if k not in ("proxies", "ci", "ci_about")} == {
        k: v for k, v in plain.items() if k not in ("ci", "ci_about")}
    text = summary(good)
    assert "eff. predictors" in text and "(on the truth)" in text and "(floor)" in text


def test_the_scm_targets_replay_descendants_and_keep_the_rest(stories):
    story = stories["toy_tf_blocks"]
    factual = np.array([[0, 1, 2], [1, 3, 0]])
    t = story_targets(story, factual, {"y": np.array([1, 1])}, k=16, seed=0)
    assert (t["y"] == 1).all() and (t["kind"] == factual[:, :1]).all() and (t["x"] == factual[:, 1:2]).all()
    t = story_targets(story, factual, {"kind": np.array([1, 0])}, k=64, seed=0)
    assert (t["kind"] == [[1], [0]]).all() and (t["y"] == factual[:, 2:]).all()  # y is no descendant of kind
    assert len(np.unique(t["x"][0])) > 1  # x is: replayed through its abducted noise, a distribution


def test_more_test_pictures_than_are_held_out_is_a_clear_error(stories, pred):
    from cvaeq.errors import DataError

    with pytest.raises(DataError, match="holds out 60"):
        evaluate(LoadedModel(stories["toy_tf_files"], None, Oracle(FILES)), n=61, samples=4, progress=False,
                 threads=1, proxies=pred)


def test_an_8bit_world_gets_its_proxies_and_exact_composition_through_the_engine():
    import json

    import torch

    from cvaeq.loading import Mechanisms
    from cvaeq.model.causal_vae import CausalVAEFamily
    from cvaeq.story import load_story

    story = load_story("colour_pendulum")
    tiny = {"patch_channels": 4, "merge_channels": 4, "hidden": 16, "dec_channels": 4, "cell_hidden": 8,
            "dec_hidden": 16}
    torch.manual_seed(0)
    model = CausalVAEFamily().build(story.world, story.latent_dim, tiny).eval()  # untrained
    tables = {f: torch.log(torch.as_tensor(story.table(f))) for f in story.factors}
    pred = P.train_predictors(story, *P.training_pictures(story, 0, 64, 16), seed=0, epochs=1, progress=False)
    r = evaluate(Mechanisms(story, tables, model), n=2, samples=4, tv_particles=50, truth_particles=8,
                 progress=False, threads=1, proxies=pred)
    tf = r["proxies"]["truthfree"]
    assert tf["composition_l1"] == {"1": 0.0, "10": 0.0}  # each pixel's noise abducted within its level's bin
    assert tf["composition_decoder_l1"]["1"] > 0  # an untrained decoder does not give the picture back
    assert set(r["proxies"]["effectiveness"]) == set(story.world.names)
    json.dumps(r)  # every figure and interval is plain JSON
    assert "eff. predictors" in summary(r)


def test_targets_of_a_world_with_continuous_factors_compare_mae_with_one_and_a_half_floors():
    from cvaeq.evaluation.truthfree import targets

    from .toyworlds import CONTINUOUS, SquaresStory

    floor = {"kind": 0.99, "size": 0.2, "bright": 10.0}
    eff = {
        "size": {"kind": 0.97, "size": 0.29, "bright": 16.0},  # size within 1.5 x 0.2; bright not (15)
        "bright": {"kind": 0.90, "size": 0.31, "bright": 14.0},  # kind not kept (0.90 < 0.95); size not (0.30)
        "kind": {"kind": 0.99, "size": 0.1, "bright": 5.0},
    }
    tf = {"effectiveness": eff, "composition_l1": {"1": 0.0, "10": 0.0}}
    lines = {t["target"]: t["pass"] for t in targets(CONTINUOUS, SquaresStory(), tf, floor)}
    assert lines == {
        "under do(kind), size MAE <= 1.5 x floor (0.3)": True,
        "under do(kind), bright MAE <= 1.5 x floor (15)": True,
        "under do(size), kind kept >= 0.95": True,
        "under do(size), size MAE <= 1.5 x floor (0.3)": True,
        "under do(size), bright MAE <= 1.5 x floor (15)": False,
        "under do(bright), kind kept >= 0.95": False,
        "under do(bright), size MAE <= 1.5 x floor (0.3)": False,
        "under do(bright), bright MAE <= 1.5 x floor (15)": True,
        "composition through the engine exactly 0": True,
    }
    tf["composition_l1"] = {"1": 0.0, "10": 1e-9}
    assert not targets(CONTINUOUS, SquaresStory(), tf, floor)[-1]["pass"]
