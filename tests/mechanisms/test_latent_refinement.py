"""The latent proposal refined per evidence picture (cvaeq.mechanisms.latent_refinement), and the
8-bit image's pixel noise weighed first and drawn after resampling (levels.Bins, the mechanism's weigh).

The swatch world and its hand-written model are in ``tests/eightbit.py``: its q(Z | X, factors) is the
prior, Normal(0, 1), while the picture pins Z to a few hundredths, so the unrefined proposal wastes
most particles and the refined one should not.
"""

import math

import numpy as np
import pytest
import torch

from cvaeq import levels
from cvaeq.engine import abduct, infer, predict
from cvaeq.mechanisms import latent_refinement as lr
from cvaeq.plugins import get_plugin_manager
from cvaeq.scm import build_scm
from cvaeq.story import story_from_text

from ..eightbit import STORY, TEMPLATES, SwatchModel, SwatchPlugin, render

RED_4 = np.array([[0, 1]])  # hue red, size 4


@pytest.fixture
def swatch():
    pm = get_plugin_manager()
    plugin = SwatchPlugin()
    pm.register(plugin, name="swatch-world-refinement")
    try:
        yield story_from_text(STORY)
    finally:
        pm.unregister(plugin)


def _posterior_of_z(model, picture, classes):
    """The exact posterior mean and sd of Z given the picture and its factors, by quadrature
    (float64, a grid 20 posterior widths across at 4,001 points)."""
    grid = torch.linspace(-6, 6, 4001, dtype=torch.float64)
    c = torch.as_tensor(classes).expand(len(grid), -1)
    loc, log_scale = model.pixel_levels(c, grid.float()[:, None])
    log_lik = levels.log_prob(picture, loc.double(), log_scale.double()).flatten(1).sum(1)
    w = torch.softmax(log_lik - 0.5 * grid**2, 0)
    mean = float((w * grid).sum())
    return mean, math.sqrt(float((w * (grid - mean) ** 2).sum()))


def test_the_refined_proposal_answers_as_the_exact_posterior_does(swatch):
    """E[Z | X=img] through the engine against quadrature. The picture fixes the factors (the
    template match is sure), so the posterior of Z is one-dimensional and exact on a grid. The
    estimate is self-normalised importance sampling with ESS n: its sd is about sd(Z | X) / sqrt(n);
    4 of those is the tolerance. Without the refinement the same 400 particles keep an ESS under 60."""
    model = SwatchModel(shift=0.03)  # Z moves the square's colour by 7.6 levels per unit
    scm = build_scm(swatch, image_model=model)
    picture = torch.as_tensor(render(RED_4)[0])
    mean, sd = _posterior_of_z(model, picture, RED_4)
    assert sd < 0.1  # the picture pins Z (its prior's sd is 1)
    r = infer(scm, ["Z"], evidence={"X": picture}, num_particles=400, seed=0)
    assert r.ess > 300
    estimate = float((r.weights * r.samples["Z"][:, 0].double()).sum())
    assert abs(estimate - mean) < 4 * sd / math.sqrt(r.ess), (estimate, mean, sd, r.ess)
    scm.mechanisms["X"].refine_latent = False
    plain = infer(scm, ["Z"], evidence={"X": picture}, num_particles=400, seed=0)
    assert plain.ess < 60


def test_the_weights_divide_by_the_density_the_latent_was_drawn_from():
    """``draw``'s log q' is the defensive mixture's density at each draw (computed here
    independently), q's own density in a group without a fit; and about DEFENSIVE of the
    draws come from q (binomial: 4,000 draws, 5 sd = 0.017)."""
    torch.manual_seed(0)
    s = 4000
    loc, scale = torch.zeros(s, 2), torch.ones(s, 2)
    fit = lr.LaplaceFit(
        mean=torch.tensor([3.0, -2.0]), scale_tril=torch.tensor([[0.1, 0.0], [0.05, 0.2]]), evaluations=1
    )
    group = (torch.arange(s) >= s // 2).long()  # the first half has a fit, the second keeps q
    z, log_q = lr.draw(loc, scale, [fit, None], group)
    q = torch.distributions.Normal(loc.double(), scale.double()).log_prob(z.double()).sum(1)
    lap = torch.distributions.MultivariateNormal(fit.mean.double(), scale_tril=fit.scale_tril.double())
    mixed = torch.logaddexp(q + math.log(lr.DEFENSIVE), lap.log_prob(z.double()) + math.log(1 - lr.DEFENSIVE))
    torch.testing.assert_close(log_q[: s // 2], mixed[: s // 2], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(log_q[s // 2 :], q[s // 2 :], rtol=1e-12, atol=1e-9)
    from_q = float(((z[: s // 2] - fit.mean).norm(dim=1) > 1.5).double().mean())  # far from the Laplace part
    assert abs(from_q - lr.DEFENSIVE) < 0.025, from_q


def test_a_target_without_a_mode_keeps_q():
    """A log-density with no maximum (convex) gives no fit; the rows then draw from q alone."""
    assert lr.laplace_fit(lambda z: (z.double() ** 2).sum(1), torch.zeros(2), torch.ones(2)) is None
    assert (
        lr.laplace_fit(
            lambda z: torch.full((len(z),), float("nan"), dtype=torch.float64), torch.zeros(2), torch.ones(2)
        )
        is None
    )
    torch.manual_seed(1)
    loc, scale = torch.randn(5, 2), torch.rand(5, 2) + 0.5
    z, log_q = lr.draw(loc, scale, [None], torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(
        log_q, torch.distributions.Normal(loc.double(), scale.double()).log_prob(z.double()).sum(1)
    )


def test_weighing_first_draws_the_noise_abduct_draws_from_the_same_uniforms(swatch):
    m = build_scm(swatch, image_model=SwatchModel()).mechanisms["X"]
    picture = torch.as_tensor(render(RED_4)[0]).expand(6, 3, 8, 8)
    parents = {
        "hue": torch.zeros(6, dtype=torch.long),
        "size": torch.ones(6, dtype=torch.long),
        "Z": torch.linspace(-40, 40, 6)[:, None],
    }  # some particles far off: the log-space bins too
    torch.manual_seed(5)
    noise, log_w = m.abduct(picture, parents)
    torch.manual_seed(5)
    weight, draw = m.weigh(picture, parents)
    assert torch.equal(weight, log_w) and torch.equal(draw(None), noise)
    # the copies of resampled rows: each its own draw, in its row's bins, the picture replayed
    rows = torch.tensor([0, 0, 0, 3, 3, 5])
    copies = draw(rows)
    assert not torch.equal(copies[0], copies[1])
    kept = {k: v[rows] for k, v in parents.items()}
    assert torch.equal(m.assign(kept, copies), picture)


def test_bins_drawn_for_rows_are_the_bins_of_those_rows():
    """``Bins.draw(r, rows)`` is ``Bins`` of the indexed edges drawn at ``r``, to the bit (the copies
    of a resampled particle computed from the original's bins)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, 4, 4), generator=g, dtype=torch.uint8)
    loc = torch.rand(4, 3, 4, 4, generator=g) * 3 - 1  # some bins far out in a tail
    log_scale = torch.rand(4, 3, 4, 4, generator=g) * 6 - 8
    a, b = levels.standardised_edges(x, loc, log_scale)
    rows = torch.tensor([2, 2, 0, 3, 3, 3])
    r = torch.rand(6, 3, 4, 4, generator=g)
    assert torch.equal(levels.Bins(a, b).draw(r, rows), levels.Bins(a[rows], b[rows]).draw(r))


@pytest.mark.parametrize("background", [0, 255, None])
def test_bins_of_one_picture_give_the_numbers_of_every_bin_computed_alike(background):
    """``Bins.of`` a picture shared by the rows computes ``q = 1 - e^-(b - a)`` at its inner levels
    alone (an end bin's is exactly 1): the same L, log p, row sums and noise, to the bit, as
    ``Bins`` of the same edges computing it everywhere; with a background of 0, of 255, or none.
    The end bins include far ones (locations well off the picture's levels)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (1, 3, 8, 8), generator=g, dtype=torch.uint8)
    if background is not None:
        x[..., 2:, :] = background  # most places at an end level, the first rows mixed
        x[..., 0, :2] = 255 - background  # and both end levels present
    x[..., 0, 2], x[..., 0, 3] = 1, 254  # and the inner levels next to them
    loc = torch.rand(9, 3, 8, 8, generator=g) * 3 - 1
    log_scale = torch.rand(9, 3, 8, 8, generator=g) * 8 - 8
    shared = levels.Bins.of(x, loc, log_scale)
    every = levels.Bins(*levels.standardised_edges(x, loc, log_scale))
    for name in ("a", "b", "mass", "log_p", "sums"):
        assert torch.equal(getattr(shared, name), getattr(every, name)), name
    assert shared.far is not None and torch.equal(shared.far, every.far)
    r = torch.rand(9, 3, 8, 8, generator=g)
    assert torch.equal(shared.draw(r), every.draw(r))


@pytest.mark.parametrize("resample_below", [0.0, 0.5, 1.0])
def test_the_null_intervention_is_exact_wherever_the_pixel_noise_is_drawn(swatch, resample_below):
    """Drawn in the walk (no resampling possible), after weighing without resampling, or after
    resampling (always, at 1.0): the evidence comes back byte for byte; resampled copies differ in noise."""
    scm = build_scm(swatch, image_model=SwatchModel())
    picture = torch.as_tensor(render(RED_4)[0])
    torch.manual_seed(0)
    p = abduct(scm, {"X": picture}, 64, resample_below=resample_below)
    assert torch.equal(predict(scm, p)["X"], picture.expand(64, 3, 8, 8))
    assert p.resampled == (resample_below == 1.0)
    if p.resampled:
        same = (p.values["Z"][1:] == p.values["Z"][:-1]).all(1)
        assert bool(same.any()) and not bool((p.noise["X"][1:] == p.noise["X"][:-1]).flatten(1).all(1)[same].any())


def test_row_chunks_decide_membership_as_one_pass_does_whatever_the_row_length():
    """The per-pixel arithmetic runs over row chunks (levels.row_chunks): with chunks of a few rows
    and a row length that is no multiple of the vector width (28×28 grey pictures, 37 particles),
    quantising the abducted noise gives the picture back to the byte, for the particles in their
    order and for resampled copies in another; and quantise, the edges and the bins give the same
    numbers in many chunks as in one."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (1, 28, 28), generator=g, dtype=torch.uint8)
    loc = x.double().div(255).float() + 0.02 * torch.randn(37, 28, 28, generator=g)
    log_scale = torch.rand(37, 28, 28, generator=g) * 7 - 8
    saved = levels.CHUNK
    try:
        levels.CHUNK = 3 * 784  # chunks of 4 rows (a multiple of 64 values), the last of 1
        assert len(levels.row_chunks(loc.shape)) == 10
        bins = levels.Bins.of(x, loc, log_scale)
        eps = bins.draw()
        assert torch.equal(levels.quantise(loc, log_scale, eps), x.expand(37, 28, 28))
        rows = torch.randint(0, 37, (37,), generator=g)
        copies = bins.draw(rows=rows)
        assert torch.equal(levels.quantise(loc[rows], log_scale[rows], copies), x.expand(37, 28, 28))
        chunked = (levels.standardised_edges(x, loc, log_scale), bins.log_p, levels.quantise(loc, log_scale, copies))
        levels.CHUNK = 1 << 30  # one pass over everything
        whole = (levels.standardised_edges(x, loc, log_scale), levels.Bins.of(x, loc, log_scale).log_p,
                 levels.quantise(loc, log_scale, copies))
    finally:
        levels.CHUNK = saved
    assert all(torch.equal(a, b) for a, b in zip([*chunked[0], *chunked[1:]], [*whole[0], *whole[1:]]))


class _ShiftModel(SwatchModel):
    """The swatch model with its colour shift per unit of Z a torch parameter (weights that can change)."""

    def __init__(self):
        super().__init__()
        self.shift_p = torch.nn.Parameter(torch.tensor(0.03), requires_grad=False)

    def pixel_levels(self, classes, z):
        loc = TEMPLATES[classes[:, 0] * 3 + classes[:, 1]] + self.shift_p * z[:, :1, None, None]
        return loc, torch.full_like(loc, self.log_scale)


def test_asking_again_about_a_picture_reuses_its_fit_and_answers_the_same_bit_for_bit(swatch, monkeypatch):
    """The Laplace fit of a picture asked about before is kept (lr.FitCache): the same question
    again makes no fit and gives the same answer as the first time and as a fresh cache does;
    once the model's weights change in place, the fit is made again."""
    model = _ShiftModel()
    scm = build_scm(swatch, image_model=model)
    picture = torch.as_tensor(render(RED_4)[0])
    calls = []
    real = lr.laplace_fit
    monkeypatch.setattr(lr, "laplace_fit", lambda *a, **k: calls.append(1) or real(*a, **k))

    def ask_z():
        r = infer(scm, ["Z"], evidence={"X": picture}, num_particles=200, seed=0)
        return r.samples["Z"], r.weights

    first = ask_z()
    made = len(calls)
    assert made >= 1
    again = ask_z()
    assert len(calls) == made and all(torch.equal(a, b) for a, b in zip(first, again))
    scm.mechanisms["X"].fits = lr.FitCache()
    fresh = ask_z()
    assert len(calls) == 2 * made and all(torch.equal(a, b) for a, b in zip(first, fresh))
    with torch.no_grad():
        model.shift_p.mul_(1.5)
    changed = ask_z()
    assert len(calls) == 3 * made and not torch.equal(first[0], changed[0])
