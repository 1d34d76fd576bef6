"""Fitting continuous factors' laws from labelled data (cvaeq.invertible.fit_law, fit_laws)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cvaeq.engine import infer
from cvaeq.invertible import Law, LawError, fit_law, fit_laws
from cvaeq.scm import build_scm
from cvaeq.story import load_story

DEEPSCM = load_story("morphomnist")


def test_a_linear_gaussian_law_with_a_categorical_and_a_numeric_parent_is_recovered():
    """value = 1 + 0.8 x + w[c] + 0.3 e: least squares on the link space is the MLE; with 20,000
    rows the estimates' sd is ~0.003, so 0.02 is a wide margin that a wrong design would miss."""
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.integers(0, 5, n)  # classes of a grid 0, 0.5, ..., 2
    c = rng.integers(0, 3, n)
    grid = np.linspace(0, 2, 5)
    w = np.array([0.0, -1.0, 0.5])
    v = 1 + 0.8 * grid[x] + w[c] + 0.3 * rng.standard_normal(n)
    law = fit_law(v, {"x": x, "c": c}, {"x": grid, "c": ("a", "b", "d")}, low=-20, high=20, links=("identity",))
    assert law.link == "identity" and law.bias == pytest.approx(1, abs=0.02)
    assert law.weights["x"] == pytest.approx(0.8, abs=0.02)
    assert law.weights["c"] == pytest.approx({"a": 0.0, "b": -1.0, "d": 0.5}, abs=0.02)
    assert law.scale == pytest.approx(0.3, abs=0.01)


def test_the_link_of_highest_likelihood_is_chosen():
    rng = np.random.default_rng(1)
    t = 0.5 + rng.gamma(10, 1 / 5, 10000)
    law = fit_law(t, {}, {}, low=0, high=12)
    assert law.link == "exp"  # a gamma is close to a log-normal, far from a normal at shape 10 / mean 2.5
    positive = fit_law(np.exp(rng.standard_normal(5000)), {}, {}, low=0, high=100)
    assert positive.link == "exp" and positive.scale == pytest.approx(1, abs=0.05)


def test_fitted_deepscm_laws_explain_held_out_labels_nearly_as_well_as_the_truth():
    """Mean held-out log-density (nats per row) of the fitted laws within 0.2 of the true laws':
    the truth's normal noise in a sigmoid frame of [64, 255] is fitted in the world's [0, 255]."""
    train = DEEPSCM.sample(7000, np.random.default_rng(0))
    test = DEEPSCM.sample(3000, np.random.default_rng(1))
    fitted = build_scm(DEEPSCM, laws=fit_laws(DEEPSCM, train))
    truth = build_scm(DEEPSCM)
    t, i = torch.from_numpy(test[:, 1]), torch.from_numpy(test[:, 2])
    for scm_name, scm in (("fitted", fitted), ("truth", truth)):
        lp = scm.mechanisms["thickness"].log_prob(t, {}) + scm.mechanisms["intensity"].log_prob(i, {"thickness": t})
        if scm_name == "fitted":
            got = float(lp.mean())
        else:
            best = float(lp.mean())
    assert got == pytest.approx(best, abs=0.2) and got <= best + 0.05


def test_fitted_laws_are_json_and_build_the_scm_they_describe():
    fitted = fit_laws(DEEPSCM, DEEPSCM.sample(2000, np.random.default_rng(0)), rows=slice(0, 1500))
    again = json.loads(json.dumps(fitted))
    assert again == fitted
    scm = build_scm(DEEPSCM, laws=again)
    law = scm.mechanisms["intensity"].law
    assert law == Law.from_dict({k: v for k, v in fitted["intensity"].items() if k != "parents"}, ("thickness",))
    r = infer(scm, ["intensity"], {"thickness": 3.0}, {"thickness": 2.0, "intensity": 150.0}, 4, seed=0)
    assert r.samples["intensity"].dtype == torch.float64 and float(r.samples["intensity"][0]) > 150


def test_bad_labels_and_laws_are_refused_clearly():
    with pytest.raises(LawError, match=r"shape \(N, 3\) in the order digit, thickness, intensity"):
        fit_laws(DEEPSCM, np.zeros((4, 2)))
    with pytest.raises(LawError, match="at least two"):
        fit_law(np.ones(1), {}, {}, low=0, high=1)
    with pytest.raises(Exception, match="reads \\['digit'\\]"):
        build_scm(DEEPSCM, laws={"intensity": {"parents": ["digit"], "link": "identity"}})
    with pytest.raises(Exception, match="not a continuous factor"):
        build_scm(DEEPSCM, laws={"digit": {"link": "identity"}})


def test_a_loaded_model_builds_its_scm_with_its_fitted_laws():
    from cvaeq.loading import LoadedModel

    fitted = fit_laws(DEEPSCM, DEEPSCM.sample(1000, np.random.default_rng(2)))
    scm = LoadedModel(DEEPSCM, laws=fitted).scm(False)
    assert scm.mechanisms["thickness"].law.to_dict() == {k: v for k, v in fitted["thickness"].items() if k != "parents"}
    assert LoadedModel(DEEPSCM).scm(False).mechanisms["thickness"].law == DEEPSCM.law("thickness")
