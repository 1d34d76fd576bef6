"""Abduction, action, prediction and their composition on the default story."""

import numpy as np
import pytest
import torch
from pyro import poutine

from cvaeq.worlds.dsprites.factors import VALUES
from cvaeq.engine import (Particles, abduct, effective_sample_size, fallback_abduct, infer, intervene, predict,
                          rejuvenate)
from cvaeq.engine.particles import systematic_indices
from cvaeq.errors import MechanismError, QueryError
from cvaeq.graph import CausalGraph
from cvaeq.mechanisms import GaussianLatent, GumbelMax
from cvaeq.scm import SCM, build_scm
from cvaeq.story import load_story
from cvaeq.testing import bare

HEART = {"shape": 2, "scale": 1, "orientation": 5, "posX": 25, "posY": 10}


@pytest.fixture(scope="module")
def story():
    return load_story()


@pytest.fixture(scope="module")
def scm(story):
    return build_scm(story)


def test_same_seed_same_result_bit_for_bit(scm):
    a = infer(scm, ["scale", "posY"], {"shape": 0}, HEART, 2000, seed=7)
    b = infer(scm, ["scale", "posY"], {"shape": 0}, HEART, 2000, seed=7)
    c = infer(scm, ["scale", "posY"], {"shape": 0}, HEART, 2000, seed=8)
    assert all(torch.equal(a.samples[t], b.samples[t]) for t in a.targets)
    assert a.distribution("posY") == b.distribution("posY")
    assert not torch.equal(a.samples["posY"], c.samples["posY"])


def test_infer_leaves_the_global_rng_alone(scm):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    infer(scm, ["scale"], {}, {}, 100, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_observational_posterior_matches_the_story(scm, story):
    # P(shape | scale=0.5) by Bayes' rule on the story's tables.
    joint = story.table("shape") * story.table("scale")[:, 0]
    r = infer(scm, ["shape"], {}, {"scale": 0}, 20000, seed=0)
    assert r.rung == "observational"
    assert np.allclose(list(r.distribution("shape").values()), joint / joint.sum(), atol=0.02)
    assert 0 < r.ess < 20000  # likelihood weighting: shape is unobserved, scale observed


def test_interventional_query_cuts_the_parents(scm, story):
    r = infer(scm, ["scale", "shape"], {"scale": 5}, {}, 20000, seed=0)
    assert r.rung == "interventional" and r.ess == pytest.approx(20000)
    assert r.distribution("scale")[5] == pytest.approx(1.0)
    # shape is an ancestor of scale: do(scale) leaves its distribution alone
    assert np.allclose(list(r.distribution("shape").values()), story.table("shape"), atol=0.015)


def test_counterfactual_keeps_non_descendants_and_moves_descendants(scm, story):
    r = infer(scm, ["shape", "orientation", "scale", "posX", "posY"], {"shape": 0}, HEART, 5000, seed=0)
    assert r.rung == "counterfactual"
    assert set(r.samples["shape"].tolist()) == {0}
    assert set(r.samples["orientation"].tolist()) == {HEART["orientation"]}  # not a descendant of shape
    assert set(r.factual["scale"].tolist()) == {HEART["scale"]}
    # a small heart would have been a bigger square, on average
    assert r.expectation("scale") > VALUES["scale"][HEART["scale"]]


def test_expectation_is_the_mean_of_the_distribution(scm):
    r = infer(scm, ["posY"], {"shape": 0}, HEART, 3000, seed=1)
    dist = r.distribution("posY")
    assert sum(dist.values()) == pytest.approx(1.0)
    assert r.expectation("posY") == pytest.approx(sum(VALUES["posY"][k] * p for k, p in dist.items()))


def test_result_helpers_refuse_the_wrong_kind_of_target(scm):
    r = infer(scm, ["shape", "Z"], {}, {}, 10, seed=0)
    with pytest.raises(QueryError, match="only numeric factors"):
        r.expectation("shape")
    with pytest.raises(QueryError, match="not categorical"):
        r.distribution("Z")
    with pytest.raises(QueryError, match="not a target"):
        r.distribution("scale")
    assert r.mean("Z").shape == (6,)


def test_resampling_keeps_the_abduction_ess(scm):
    p = abduct(scm, {"posY": 31, "scale": 0}, 2000, resample_below=1.0)
    assert p.resampled and p.ess < 2000
    assert torch.equal(p.log_weights, torch.zeros(2000, dtype=torch.float64))
    q = abduct(scm, {"posY": 31, "scale": 0}, 2000, resample_below=0.0)
    assert not q.resampled and effective_sample_size(q.log_weights) == pytest.approx(q.ess)


def test_systematic_resampling_copies_each_particle_its_share_rounded():
    torch.manual_seed(0)
    w = torch.softmax(2 * torch.randn(4, 50, dtype=torch.float64), 1)
    counts = torch.stack([torch.bincount(row, minlength=50) for row in systematic_indices(w)])
    share = 50 * w
    assert bool(((counts >= (share - 1e-9).floor()) & (counts <= (share + 1e-9).ceil())).all())


def test_resampled_copies_get_their_own_noise_and_still_replay(scm):
    p = abduct(scm, {"posY": 31, "scale": 0}, 2000, resample_below=1.0)
    worlds = torch.stack([p.values[f] for f in ("shape", "posX")], 1)
    assert len(torch.unique(worlds, dim=0)) < 200  # few distinct factual worlds, many copies each
    assert len(torch.unique(p.noise["posY"], dim=0)) == 2000  # ... each copy with its own Gumbel noise
    out = predict(scm, p)
    assert all(torch.equal(out[v], p.values[v]) for v in scm.nodes)


def test_rejuvenation_leaves_the_counterfactual_unchanged(scm):
    ev = {"posY": 31, "scale": 0}
    answers = []
    for below in (0.0, 1.0):
        r = infer(scm, ["posY"], {"shape": 0}, ev, 40_000, seed=3, resample_below=below)
        answers.append(np.array(list(r.distribution("posY").values())))
    assert 0.5 * np.abs(answers[0] - answers[1]).sum() < 0.02
    # and rejuvenating particles that were never resampled changes no value or weight
    p = abduct(scm, ev, 100, resample_below=0.0)
    q = rejuvenate(scm, p)
    assert all(torch.equal(q.values[v], p.values[v]) for v in scm.nodes) and torch.equal(q.log_weights, p.log_weights)


def test_replay_through_unintervened_model_reproduces_the_particles(scm):
    p = abduct(scm, {"posY": 3}, 500)
    out = predict(scm, p)
    assert all(torch.equal(out[v], p.values[v]) for v in scm.nodes)


def test_action_is_applied_by_the_walk_and_pyro_do_still_composes(scm):
    world = intervene(scm, {"shape": 1})
    torch.manual_seed(0)
    trace = poutine.trace(world.model).get_trace(200)
    assert set(trace.nodes["_RETURN"]["value"]["shape"].tolist()) == {1}
    assert set(trace.nodes["shape"]["value"].tolist()) == {1}  # the value site records the world's value
    # pyro's own do() on the factual model's value site gives the same world, draw for draw
    torch.manual_seed(0)
    by_pyro = poutine.do(scm.model, data={"shape": torch.tensor(1)})(200)
    assert all(torch.equal(by_pyro[v], trace.nodes["_RETURN"]["value"][v]) for v in scm.nodes)
    assert scm.interventions == {}  # the factual SCM is unchanged


def test_bad_queries_are_query_errors(scm):
    with pytest.raises(QueryError, match="unknown target 'colour'"):
        infer(scm, ["colour"], {}, {}, 10)
    with pytest.raises(QueryError, match="evidence on unknown node"):
        abduct(scm, {"colour": 0}, 10)
    with pytest.raises(QueryError, match="off the domain; shape has classes 0..2"):
        abduct(scm, {"shape": 3}, 10)
    with pytest.raises(QueryError, match=r"do\(scale=6\) is off the domain"):
        intervene(scm, {"scale": 6})
    with pytest.raises(QueryError, match="do\\(\\) on unknown node"):
        intervene(scm, {"X": 0})
    with pytest.raises(QueryError, match="positive integer"):
        abduct(scm, {}, 0)


def test_impossible_evidence_is_a_query_error():
    g = CausalGraph([("a", "b")], nodes=["a", "b"])
    scm = SCM(g, {"a": GumbelMax((), [1.0, 0.0]), "b": GumbelMax(("a",), [[1.0, 0.0], [0.5, 0.5]])})
    with pytest.raises(QueryError, match="evidence is impossible"):
        infer(scm, ["b"], {}, {"b": 1}, 100)


def test_predict_needs_noise_for_every_node(scm):
    p = abduct(scm, {}, 4)
    partial = Particles({k: v for k, v in p.noise.items() if k != "Z"}, p.values, p.log_weights, p.ess)
    with pytest.raises(MechanismError, match="no noise for 'Z'"):
        predict(scm, partial)


def test_fallback_weights_estimate_the_likelihood():
    # a -> b with bare mechanisms: P(a | b=1) by likelihood weighting over b's noise.
    g = CausalGraph([("a", "b")], nodes=["a", "b"])
    pa, pb = torch.tensor([0.5, 0.5]), torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    scm = SCM(g, {"a": bare(GumbelMax)(parents=(), probs=pa), "b": bare(GumbelMax)(parents=("a",), probs=pb)})
    r = infer(scm, ["a"], {}, {"b": 1}, 4000, seed=0)
    assert r.distribution("a")[1] == pytest.approx(0.8 / 0.9, abs=0.03)


def test_fallback_refuses_continuous_values():
    scm = SCM(CausalGraph([], nodes=["Z"]), {"Z": bare(GaussianLatent)(dim=2)})
    with pytest.raises(MechanismError, match="needs discrete values"):
        fallback_abduct(scm, "Z", torch.full((3, 2), 0.5), {})


def test_every_weighted_summary_of_a_result_against_a_hand_computation():
    """Unequal weights, summaries computed by hand: the distribution and expectation
    of a factor, the mean of a vector, the highest-weight images first."""
    from cvaeq.engine.counterfactual import Result

    w = torch.tensor([0.1, 0.5, 0.15, 0.25], dtype=torch.float64)
    images = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1).expand(4, 2, 2)
    r = Result(targets=("scale", "Z", "X"), samples={"scale": torch.tensor([0, 2, 2, 5]),
               "Z": torch.tensor([[1.0, -1.0], [3.0, 0.0], [-2.0, 4.0], [0.0, 2.0]]), "X": images},
               factual={}, weights=w, ess=1 / float((w * w).sum()), rung="observational", sizes={"scale": 6},
               grids={"scale": torch.linspace(0.5, 1, 6, dtype=torch.float64)})
    assert r.distribution("scale") == pytest.approx({0: 0.1, 1: 0, 2: 0.65, 3: 0, 4: 0, 5: 0.25})
    assert r.expectation("scale") == pytest.approx(0.1 * 0.5 + 0.65 * 0.7 + 0.25 * 1.0)
    assert r.mean("Z").tolist() == pytest.approx([0.1 * 1 + 0.5 * 3 - 0.15 * 2, -0.1 + 0.15 * 4 + 0.25 * 2])
    np.testing.assert_allclose(r.mean_image().numpy(), np.full((2, 2), 0.5 + 2 * 0.15 + 3 * 0.25), rtol=1e-6)
    assert r.sample_images(3)[:, 0, 0].tolist() == [1.0, 3.0, 2.0]  # weights 0.5, 0.25, 0.15
