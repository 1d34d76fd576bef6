"""Unknown continuous factors refined jointly with Z for one evidence picture
(cvaeq.mechanisms.latent_refinement.draw_joint, DiscretisedLogisticImage._joint_proposal).

A tiny renderer-less world: a categorical ``c`` (two classes), a continuous ``t`` (standard
normal) and a one-dimensional Z, a 2x2 grey picture at ``0.7 sigmoid(t) + 0.05 c + 0.03 z``
with a sharp discretised logistic (log scale -4): the picture pins a ridge in (t, z) a few
hundredths wide, while the model's q(t | X) is as wide as the prior and q(Z | X, c) is the
prior. Drawn from q, few particles land on the ridge; refined, most do. Either way the weights
divide by the density each particle was drawn from, so the answer must be the Bayes posterior,
computed here by quadrature over (t, z), summed over c.
"""

from __future__ import annotations

import math

import pytest
import torch

from cvaeq.engine import infer
from cvaeq.graph import CausalGraph
from cvaeq.invertible import Law
from cvaeq.mechanisms import latent_refinement as lr
from cvaeq.mechanisms.continuous import ContinuousMechanism
from cvaeq.mechanisms.gaussian import gaussian_latent
from cvaeq.mechanisms.gumbel import GumbelMax
from cvaeq.mechanisms.levels_image import discretised_logistic_image
from cvaeq.scm import SCM

from ..eightbit import continuous_scm

LOG_SCALE = -4.0


class Ridge:
    """The tiny world's hand-written 8-bit model; q(t | X) centred ``shift`` off the picture's reading."""

    latent_dim, pixel = 1, "8bit"

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def pixel_levels(self, factors, z):
        f = factors.double()
        loc = torch.sigmoid(f[:, 1]) * 0.7 + 0.05 * f[:, 0] + 0.03 * z[:, 0].double()
        loc = loc.float()[:, None, None].expand(-1, 2, 2)
        return loc, torch.full_like(loc, LOG_SCALE)

    def factor_logits(self, x):
        return {"c": torch.zeros(len(x), 2)}

    def factor_normals(self, x):
        y = x.double().mean((1, 2)).clamp(0.01, 0.69) / 0.7
        loc = torch.log(y / (1 - y)) + self.shift
        return {"t": (loc, torch.zeros_like(loc))}  # sd 1: as wide as the prior

    def z_posterior(self, x, factors):
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


PICTURE = torch.tensor([[150, 152], [149, 151]], dtype=torch.uint8)


def exact_posterior() -> tuple[float, float, float]:
    """E[t | X], sd(t | X) and P(c = 1 | X) by quadrature: t and z on grids 12 prior sds across
    (1,201 x 1,201 points; the ridge's width in t, ~0.01 / 0.7 / sigmoid' ~ 0.06, spans 6 points)."""
    x = continuous_scm(Ridge()).mechanisms["X"]
    tg = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    zg = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    t, z = torch.meshgrid(tg, zg, indexing="ij")
    t, z = t.reshape(-1), z.reshape(-1)
    logs = []
    for c in (0, 1):
        parents = {"c": torch.full((len(t),), c), "t": t, "Z": z[:, None].float()}
        logs.append(x.log_prob(PICTURE.expand(len(t), 2, 2), parents) - 0.5 * t**2 - 0.5 * z**2)
    lp = torch.stack(logs)
    w = torch.softmax(lp.flatten(), 0).reshape(lp.shape)
    mean = float((w.sum(0) * t).sum())
    sd = math.sqrt(float((w.sum(0) * (t - mean) ** 2).sum()))
    return mean, sd, float(w[1].sum())


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_the_joint_refinement_answers_as_the_exact_posterior_does(shift):
    """E[t | X=img] and P(c=1 | X=img) through the engine against quadrature, with q(t | X) on and
    off the picture's reading. Self-normalised importance sampling with ESS n has an sd of about
    sd(t | X) / sqrt(n) (a probability's at most 0.5 / sqrt(n)); 4 of those is the tolerance.
    Refined, at least a quarter of 1,000 particles count (350 and 546 at seed 0: the choice of c
    by the fits' Laplace evidence is only approximate on this curved ridge), 2.5 times as many
    as drawn from q (112 and 71).

    (Sharper pictures, log scale -5 or -6, make the ridge curved on its own width and the bins
    lumpy; the Gaussian fit then helps no more, and the defensive part keeps the estimate exact:
    docs/engine.md.)"""
    mean, sd, p1 = exact_posterior()
    r = infer(continuous_scm(Ridge(shift)), ["t", "c"], None, {"X": PICTURE}, 1000, seed=0)
    assert r.ess > 250, r.ess
    assert abs(r.expectation("t") - mean) < 4 * sd / math.sqrt(r.ess), (r.expectation("t"), mean, sd, r.ess)
    assert abs(r.distribution("c")[1] - p1) < 4 * 0.5 / math.sqrt(r.ess)
    scm = continuous_scm(Ridge(shift))
    scm.mechanisms["X"].refine_latent = False
    plain = infer(scm, ["t", "c"], None, {"X": PICTURE}, 1000, seed=0)
    assert plain.ess < 150 and r.ess > 2.5 * plain.ess, (plain.ess, r.ess)


def test_the_joint_draw_divides_by_the_mixture_it_was_drawn_from():
    """``draw_joint``'s log q' is ``log(DEFENSIVE q(c) q(z | c) + (1 - DEFENSIVE) Laplace(c, z))``
    at each draw, with q(z | c) at the row's own c (recomputed here independently), q's own
    density in a group without a fit; about DEFENSIVE of the fitted rows come from q
    (binomial: 4,000 rows, 5 sd = 0.017)."""
    torch.manual_seed(0)
    s = 4000
    c_loc, c_scale = torch.tensor([1.0], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64)

    def z_given(c):  # q(Z | X, c) moves with c: its density must be taken at the drawn c
        return (0.5 * c).float(), torch.full((len(c), 1), 0.7)

    fit = lr.LaplaceFit(
        mean=torch.tensor([5.0, -3.0], dtype=torch.float64),
        scale_tril=torch.tensor([[0.1, 0.0], [0.05, 0.2]], dtype=torch.float64),
        evaluations=1,
    )
    group = (torch.arange(s) >= s // 2).long()
    c, z, log_q = lr.draw_joint(c_loc, c_scale, z_given, [fit, None], group)
    loc, scale = z_given(c)
    q = torch.distributions.Normal(c_loc, c_scale).log_prob(c).sum(1)
    q = q + torch.distributions.Normal(loc.double(), scale.double()).log_prob(z.double()).sum(1)
    lap = torch.distributions.MultivariateNormal(fit.mean, scale_tril=fit.scale_tril)
    point = torch.cat([c, z.double()], 1)
    mixed = torch.logaddexp(q + math.log(lr.DEFENSIVE), lap.log_prob(point) + math.log(1 - lr.DEFENSIVE))
    torch.testing.assert_close(log_q[: s // 2], mixed[: s // 2], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(log_q[s // 2 :], q[s // 2 :], rtol=1e-12, atol=1e-9)
    from_q = float(((point[: s // 2] - fit.mean).norm(dim=1) > 1.5).double().mean())
    assert abs(from_q - lr.DEFENSIVE) < 0.025, from_q
    assert c.dtype == torch.float64 and z.dtype == torch.float32


def test_the_proposal_quality_scores_the_amortised_q_unless_asked_for_the_refined_one():
    """proposal_quality measures q itself by default (the refinement off for the call, and back on
    after); refined=True scores what queries draw from: on the ridge picture, many more particles."""
    from cvaeq.engine import proposal_quality

    scm = continuous_scm(Ridge(0.7))
    pictures = PICTURE[None]
    amortised = proposal_quality(scm, pictures, 1000, seed=0)
    assert scm.mechanisms["X"].refine_latent is True
    refined = proposal_quality(scm, pictures, 1000, seed=0, refined=True)
    assert amortised.ess[0] < 150 and refined.ess[0] > 3 * amortised.ess[0], (amortised.ess, refined.ess)


def test_autograd_and_the_stencil_find_the_same_gaussian():
    """On an exactly quadratic log-density (a correlated Normal), central differences are exact,
    and autograd's Hessian is too: both fits give its mean and covariance to rounding."""
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    cov = torch.tensor([[0.04, 0.01, 0.0], [0.01, 0.09, -0.02], [0.0, -0.02, 0.25]], dtype=torch.float64)
    prec = torch.linalg.inv(cov)

    def f(z):
        d = z.double() - mean
        return -0.5 * ((d @ prec) * d).sum(1)

    loc, scale = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for fit in (lr.laplace_fit(f, loc, scale), lr.laplace_fit(f, loc, scale, derivatives=lr.autograd_derivatives(f))):
        assert fit is not None
        torch.testing.assert_close(fit.mean, mean, rtol=0, atol=1e-6)
        torch.testing.assert_close(fit.scale_tril @ fit.scale_tril.T, cov, rtol=0, atol=1e-9)


class NumpyRidge(Ridge):
    """The same model with its decoder outside autograd (through numpy): no gradient to take."""

    def pixel_levels(self, factors, z):
        loc, log_scale = super().pixel_levels(factors.detach(), z.detach())
        return torch.from_numpy(loc.numpy().copy()), log_scale


@pytest.mark.parametrize("model, autograd", [(Ridge(0.7), True), (NumpyRidge(0.7), False)])
def test_above_the_stencil_bound_autograd_fits_where_the_decoder_is_differentiable(monkeypatch, model, autograd):
    """With the stencil's bound at 0 every fit asks for autograd's derivatives: a torch decoder
    gives them (the fits made with them), a numpy one does not and the stencil fits instead;
    either way the engine's answer is the quadrature's (tolerance as above) and the ESS high."""
    calls = []
    fit = lr.laplace_fit

    def recorded(f, loc, scale, derivatives=None):
        try:
            out = fit(f, loc, scale, derivatives=derivatives)
        except lr.NotDifferentiable:
            calls.append("refused")
            raise
        calls.append("autograd" if derivatives is not None else "stencil")
        return out

    monkeypatch.setattr(lr, "STENCIL_MAX_DIM", 0)
    monkeypatch.setattr(lr, "laplace_fit", recorded)
    mean, sd, _ = exact_posterior()
    r = infer(continuous_scm(model), ["t", "c"], None, {"X": PICTURE}, 1000, seed=0)
    assert calls == (["autograd"] * 2 if autograd else ["refused", "stencil"] * 2), calls
    assert r.ess > 250, r.ess
    assert abs(r.expectation("t") - mean) < 4 * sd / math.sqrt(r.ess)
