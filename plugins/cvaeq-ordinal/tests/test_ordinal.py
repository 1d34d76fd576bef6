"""The ordinal family: cvaeq's conformance suite, monotone counterfactuals, registration."""

import numpy as np
import pytest
import torch

import cvaeq_ordinal
from cvaeq.engine import infer
from cvaeq.graph import CausalGraph
from cvaeq.mechanisms import GumbelMax
from cvaeq.plugins import get_mechanisms, get_plugin_manager
from cvaeq.scm import SCM, build_scm
from cvaeq.story import load_story, story_from_text
from cvaeq.testing import CHECKS


@pytest.fixture
def registered():
    """The plugin registered as an installed one would be (installed plugins are not loaded in tests)."""
    pm = get_plugin_manager()
    if pm.is_registered(cvaeq_ordinal):
        yield
        return
    pm.register(cvaeq_ordinal, name="cvaeq-ordinal")
    yield
    pm.unregister(cvaeq_ordinal)


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_ordinal_conforms(check):
    check(cvaeq_ordinal.ordinal)


def test_registered_under_its_plugin(registered):
    family = get_mechanisms()["ordinal"]
    assert family.plugin == "cvaeq-ordinal"
    assert isinstance(family(parents=(), probs=torch.tensor([0.5, 0.5])), cvaeq_ordinal.Ordinal)


def _two_node(mechanism):
    # a -> b; row a=1 of b's table stochastically dominates row a=0.
    probs = torch.tensor([[0.4, 0.4, 0.2], [0.3, 0.2, 0.5]], dtype=torch.float64)
    g = CausalGraph([("a", "b")], nodes=["a", "b"])
    return SCM(g, {"a": GumbelMax((), torch.tensor([0.5, 0.5])), "b": mechanism(("a",), probs)})


def test_counterfactuals_are_monotone():
    scm = _two_node(cvaeq_ordinal.Ordinal)
    for k in range(3):
        r = infer(scm, ["b"], {"a": 1}, {"a": 0, "b": k}, 4000, seed=k)
        assert bool((r.samples["b"] >= k).all()), "raising the parent lowered b in some particle"


def test_gumbel_max_is_not_monotone_where_ordinal_is():
    # The contrast that makes the plugin worth having: Gumbel-max moves some particles down.
    r = infer(_two_node(GumbelMax), ["b"], {"a": 1}, {"a": 0, "b": 1}, 4000, seed=0)
    assert bool((r.samples["b"] < 1).any())


def test_a_story_can_pick_ordinal_per_factor(registered):
    text = load_story().text.replace(
        '[factors.scale]\nparents = ["shape"]', '[factors.scale]\nmechanism = "ordinal"\nparents = ["shape"]'
    )
    scm = build_scm(story_from_text(text))
    assert isinstance(scm.mechanisms["scale"], cvaeq_ordinal.Ordinal)
    # a heart that was made small would have been at least as big as a square
    r = infer(scm, ["scale"], {"shape": 0}, {"shape": 2, "scale": 1}, 2000, seed=0)
    assert min(k for k, p in r.distribution("scale").items() if p > 0) >= 1
    assert np.isclose(sum(r.distribution("scale").values()), 1.0)
