"""q(factors | X) for continuous factors: a tiny renderer-less world, a hand-written 8-bit model.

The world: a categorical factor ``c`` (two classes) and a continuous ``t``
(standard normal), a 2x2 grey picture whose level is ``sigmoid(t)`` brightened
by ``0.2 c``, with a sharp discretised logistic (log scale -3). The model's
``factor_normals`` proposes ``t`` from the picture; the engine weighs each
particle by prior x likelihood / q. The answer must be the Bayes posterior
(quadrature over t, summed over c) *whatever the proposal*, as long as log q
is exact: so a proposal centred off the posterior must still give it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cvaeq.engine import infer, proposal_quality
from cvaeq.graph import CausalGraph
from cvaeq.invertible import Law
from cvaeq.mechanisms.continuous import ContinuousMechanism
from cvaeq.mechanisms.gaussian import gaussian_latent
from cvaeq.mechanisms.gumbel import GumbelMax
from cvaeq.mechanisms.levels_image import discretised_logistic_image
from cvaeq.scm import SCM

from ..eightbit import continuous_scm

SEEN: list[torch.Tensor] = []


class Tiny:
    """A hand-written 8-bit model of the tiny world; ``shift``/``log_scale`` set its proposal for t."""

    latent_dim, pixel = 1, "8bit"

    def __init__(self, shift: float = 0.0, log_scale: float = -1.0) -> None:
        self.shift, self.q_log_scale = shift, log_scale

    def pixel_levels(self, factors, z):
        SEEN.append(factors)
        loc = (torch.sigmoid(factors[:, 1]) * 0.7 + 0.05 * factors[:, 0]).float()
        loc = loc[:, None, None].expand(-1, 2, 2)
        return loc, torch.full_like(loc, -2.0)

    def factor_logits(self, x):
        return {"c": torch.zeros(len(x), 2)}

    def factor_normals(self, x):
        y = x.double().mean((1, 2)).clamp(0.01, 0.69) / 0.7  # a guess that ignores c
        loc = torch.log(y / (1 - y)) + self.shift
        return {"t": (loc, torch.full_like(loc, self.q_log_scale))}

    def z_posterior(self, x, factors):
        assert factors.dtype == torch.float64
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


def posterior(picture: torch.Tensor) -> tuple[float, float]:
    """E[t | X] and P(c = 1 | X) by quadrature over t (Z does not enter the decoder)."""
    x = continuous_scm(Tiny()).mechanisms["X"]
    grid = torch.linspace(-6, 6, 4001, dtype=torch.float64)
    logs = []
    for c in (0, 1):
        parents = {"c": torch.full((len(grid),), c), "t": grid, "Z": torch.zeros(len(grid), 1)}
        logs.append(x.log_prob(picture.expand(len(grid), 2, 2), parents) - 0.5 * grid**2)
    lp = torch.stack(logs)
    w = torch.softmax(lp.flatten(), 0).reshape(lp.shape)
    return float((w.sum(0) * grid).sum()), float(w[1].sum())


PICTURE = torch.tensor([[150, 152], [149, 151]], dtype=torch.uint8)


@pytest.mark.parametrize("shift, log_scale", [(0.0, 0.0), (0.5, -0.3), (-0.5, 0.3)])
def test_the_posterior_is_bayes_whatever_the_proposal(shift, log_scale):
    """The exact log q in the weights: proposals centred on and off the posterior give its mean."""
    mean_t, p_c = posterior(PICTURE)
    r = infer(continuous_scm(Tiny(shift, log_scale)), ["t", "c"], None, {"X": PICTURE}, 20000, seed=0)
    assert r.samples["t"].dtype == torch.float64
    # MC error: sd(t | X) ~ 0.8, ESS >= 2,000 here: sd of the estimate <= 0.02; 0.08 is 4 sd
    assert r.ess > 2000
    assert r.expectation("t") == pytest.approx(mean_t, abs=0.08)
    assert r.distribution("c")[1] == pytest.approx(p_c, abs=0.04)  # a probability's sd <= 0.5 / sqrt(2000) = 0.011


def test_the_decoder_gets_float64_factors_with_exact_classes():
    SEEN.clear()
    infer(continuous_scm(Tiny()), ["t"], None, {"X": PICTURE}, 50, seed=0)
    assert SEEN and all(f.dtype == torch.float64 and f.shape[1] == 2 for f in SEEN)
    assert all(bool(((f[:, 0] == 0) | (f[:, 0] == 1)).all()) for f in SEEN)


def test_a_counterfactual_of_a_continuous_parent_moves_the_picture():
    r = infer(continuous_scm(Tiny()), ["X"], {"t": 3.0}, {"X": PICTURE}, 200, seed=0)
    assert r.samples["X"].dtype == torch.uint8
    assert float(r.mean_image("X").mean()) > float(PICTURE.double().mean() / 255) + 0.1  # sigmoid(3) is brighter


def test_the_proposal_quality_says_a_good_proposal_from_a_bad_one():
    pictures = torch.stack([PICTURE, torch.full((2, 2), 60, dtype=torch.uint8), torch.full((2, 2), 200, dtype=torch.uint8)])
    truth = np.array([[0, 0.6], [0, -1.2], [1, 1.0]])
    good = proposal_quality(continuous_scm(Tiny(-0.5, 0.3)), pictures, 400, seed=0, truth=truth, factors=("c", "t"))
    bad = proposal_quality(continuous_scm(Tiny(0.0, -2.0)), pictures, 400, seed=0, truth=truth, factors=("c", "t"))
    assert good.ess.shape == (3,) and (good.ess >= 1).all() and (good.ess <= 400).all()
    assert good.ess.mean() > 2 * bad.ess.mean()
    assert good.errors["t"].mean() < bad.errors["t"].mean()  # a posterior on few particles misses the label
    assert (good.log_weight_sd >= 0).all() and (good.zero_weight == 0).all()
    s = good.summary()
    assert s["images"] == 3 and s["particles"] == 400 and 0 < s["ess_fraction_mean"] <= 1
    assert s["t_mae"] < 1.5 and 0 <= s["c_accuracy"] <= 1  # the posterior is wide (sd ~0.8): labels are near
    again = proposal_quality(continuous_scm(Tiny(-0.5, 0.3)), pictures, 400, seed=0, truth=truth, factors=("c", "t"))
    assert np.array_equal(again.ess, good.ess)  # the same seed, the same figures


def test_a_proposal_at_the_edge_of_the_interval_stays_inside_with_its_exact_density():
    from scipy import stats

    from cvaeq.mechanisms.image import normal_draw

    torch.manual_seed(0)
    loc, log_scale = torch.tensor([254.0]), torch.tensor([1.0])  # q reads a digit at the top of its range
    v, lq = normal_draw(loc, log_scale, 4000, bounds=(0.0, 255.0))
    assert bool((v >= 0).all()) and bool((v <= 255).all())
    scale = float(np.exp(1.0))
    exact = stats.truncnorm.logpdf(v.numpy(), (0 - 254) / scale, (255 - 254) / scale, loc=254, scale=scale)
    np.testing.assert_allclose(lq.numpy(), exact, rtol=1e-9, atol=1e-9)
    # far outside: the Normal's mass inside underflows, so the draw is uniform on the interval
    v, lq = normal_draw(torch.tensor([1e4]), torch.tensor([0.0]), 100, bounds=(0.0, 255.0))
    assert bool((v <= 255).all()) and torch.allclose(lq, torch.full_like(lq, -np.log(255.0)))
