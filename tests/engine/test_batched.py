"""Batched inference (many evidence sets) is the engine's own inference, group by group."""

import doctest

import pytest
import torch

import cvaeq.engine.batched
from cvaeq.engine import abduct_groups, infer, predict_groups
from cvaeq.errors import QueryError
from cvaeq.scm import build_scm
from cvaeq.story import load_story

SCM = build_scm(load_story())


def test_docstring_examples():
    result = doctest.testmod(cvaeq.engine.batched)
    assert result.attempted > 0 and result.failed == 0


def test_a_resampled_group_is_exactly_infer_resampled():
    ev = {"posY": 31, "scale": 0}  # shape and posX unobserved: uneven weights
    r = infer(SCM, ["posY", "posX"], {"shape": 0}, ev, 64, seed=7, resample_below=1.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        g = abduct_groups(SCM, {k: torch.tensor([v]) for k, v in ev.items()}, 64, resample_below=1.0)
        out = predict_groups(g, {"shape": torch.tensor([0])})
    assert r.ess < 48 and bool((r.weights == 1 / 64).all()) and torch.equal(g.weights[0], r.weights)
    assert torch.equal(out["posY"][0], r.samples["posY"]) and torch.equal(out["posX"][0], r.samples["posX"])
    # the likelihood still comes from abduction's uneven weights, not the resampled equal ones
    assert g.log_weights.std() > 0.1
    assert torch.equal(g.particles.log_weights, torch.zeros(64, dtype=torch.float64))


def test_only_the_groups_with_a_low_ess_are_resampled():
    # shape and posX unobserved; a small object low down (group 1) is the rarer evidence: more uneven weights
    ev = {"posY": torch.tensor([16, 31]), "scale": torch.tensor([3, 0])}
    torch.manual_seed(0)
    g = abduct_groups(SCM, ev, 32, resample_below=0.75)
    ess = 1 / (torch.softmax(g.log_weights, 1) ** 2).sum(1)
    assert (ess < 24).tolist() == [False, True]
    lw = g.particles.log_weights.reshape(2, 32)
    for b in range(2):
        if ess[b] < 24:
            assert torch.equal(lw[b], torch.zeros(32, dtype=torch.float64))
        else:
            assert torch.equal(lw[b], g.log_weights[b])
    # each group's particles keep their own evidence
    assert (predict_groups(g)["posY"] == torch.tensor([[16], [31]])).all()


def test_groups_of_different_sizes_are_a_query_error():
    with pytest.raises(QueryError, match="leading group dimension"):
        abduct_groups(SCM, {"shape": torch.tensor([0, 1]), "scale": torch.tensor([0])}, 4)
