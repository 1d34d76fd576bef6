"""The 8-bit image mechanism: exact abduction of the pixel noise, and the engine on a tiny colour world.

The world (``swatch``, 3×8×8 RGB) and the hand-written model are in
``tests/eightbit.py``; nothing is trained.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvaeq import levels
from cvaeq.engine import abduct, infer, predict
from cvaeq.errors import MechanismError, PluginError, QueryError
from cvaeq.mechanisms.levels_image import DiscretisedLogisticImage, discretised_logistic_image
from cvaeq.plugins import get_plugin_manager
from cvaeq.query.answer import ask
from cvaeq.scm import build_scm
from cvaeq.story import story_from_text

from ..eightbit import STORY, SwatchModel, SwatchPlugin, render

RED_4 = np.array([[0, 1]])  # hue red, size 4


@pytest.fixture
def swatch():
    pm = get_plugin_manager()
    plugin = SwatchPlugin()
    pm.register(plugin, name="swatch-world")
    try:
        yield story_from_text(STORY)
    finally:
        pm.unregister(plugin)


# ------------------------------------------------------------- the property


def _decoder_outputs(shape):
    loc = hnp.arrays(np.float32, shape, elements=st.floats(-1000, 1000, width=32))
    log_scale = hnp.arrays(np.float32, shape, elements=st.floats(-20, 8, width=32))
    return st.tuples(loc, log_scale)


@st.composite
def pictures_and_decoders(draw):
    c = draw(st.sampled_from([1, 3]))
    h, w, s = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    picture = draw(hnp.arrays(np.uint8, (c, h, w), elements=st.integers(0, 255)))
    # decoder outputs anywhere, and some near the picture's own levels (the usual case)
    near = draw(st.booleans())
    loc, log_scale = draw(_decoder_outputs((s, c, h, w)))
    if near:  # (and so |loc| <= levels.NEAREST_EDGE_LOC: quantise's one-edge path; far ones take the other)
        loc = (picture[None] / 255.0 + loc / 10_000).astype(np.float32)
    return picture, loc, log_scale


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(pictures_and_decoders(), st.integers(0, 2**31 - 1))
def test_any_picture_any_decoder_output_abducts_into_its_bin_and_replays_byte_for_byte(case, seed):
    picture, loc, log_scale = case
    x = torch.as_tensor(picture)
    loc, log_scale = torch.as_tensor(loc), torch.as_tensor(log_scale)
    r = torch.rand(loc.shape, generator=torch.Generator().manual_seed(seed))
    eps, log_p = levels.abduct(x, loc, log_scale, r)
    lo, hi = levels.standardised_edges(x.expand(loc.shape), loc, log_scale)
    assert bool(((eps >= lo) & (eps < hi)).all()), "an abducted noise lies outside its level's bin"
    replay = levels.quantise(loc, log_scale, eps)
    assert torch.equal(replay, x.expand(loc.shape)), "the null intervention changed a pixel"
    assert bool(torch.isfinite(log_p).all()) and bool((log_p <= 0).all())
    # the bin's probability, against float64 arithmetic on the same (float32) bin edges
    exact = levels._log_mass(lo.double(), hi.double()).float()
    torch.testing.assert_close(log_p, exact, rtol=1e-5, atol=1e-5)
    # through the mechanism: noise and weight together, the picture given back
    m = discretised_logistic_image(pixel_levels=lambda ps: (loc, log_scale), parents=(), latent=None,
                                   shape=tuple(picture.shape))
    evidence = x.expand(loc.shape)
    noise, weight = m.abduct(evidence, {})
    assert torch.equal(m.assign({}, noise), evidence)
    torch.testing.assert_close(weight, m.log_prob(evidence, {}), rtol=1e-6, atol=1e-3)


# ------------------------------------------------- the posterior, statistically

#: Two-sample Kolmogorov-Smirnov at level ALPHA: a correct sampler fails a
#: setting with probability below ALPHA (the seeds are fixed, so the test is
#: deterministic; the level says how surprising a failure would be). The
#: asymptotic critical value is ``sqrt(-ln(ALPHA / 2) / 2) * sqrt((n + m) / (n m))``.
ALPHA = 1e-6


def _ks_two_sample(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, side="right") / len(a)
                        - np.searchsorted(b, grid, side="right") / len(b)).max())


def _critical(n: int, m: int) -> float:
    return math.sqrt(-math.log(ALPHA / 2) / 2) * math.sqrt((n + m) / (n * m))


@pytest.mark.parametrize("loc, log_scale, level, wide", [
    (0.5, -3.0, 128, False),    # the bin at the mode
    (0.5, -3.0, 140, False),    # a bin on the slope
    (0.45, -5.0, 118, True),    # a bin about one noise unit wide, 1.6 units out: the density falls across it
    (0.5, -5.5, 131, True),     # the same, 2.9 units out
    (0.02, -2.5, 0, False),     # the lower end bin, (-inf, edge)
    (0.97, -2.5, 255, False),   # the upper end bin, [edge, inf)
])
def test_the_abducted_noise_follows_its_posterior_as_rejection_sampling_does(loc, log_scale, level, wide):
    g = torch.Generator().manual_seed(level)
    loc_t, ls_t = torch.tensor(loc), torch.tensor(log_scale)
    # rejection: prior noise whose pixel comes out at the observed level
    prior = levels.sample_noise((400_000,), generator=g)
    accepted = prior[levels.quantise(loc_t, ls_t, prior) == level].double().numpy()
    assert len(accepted) > 5_000, "the setting's bin should hold enough prior mass to compare with"
    n = 20_000
    x = torch.full((n,), level, dtype=torch.uint8)
    eps, _ = levels.abduct(x, loc_t, ls_t, torch.rand(n, generator=g))
    d = _ks_two_sample(eps.double().numpy(), accepted)
    assert d < _critical(n, len(accepted)), f"KS distance {d:.4f} between abduction and rejection"
    # the test has power where the bin is wide enough for the density to change across it:
    # a noise uniform across the bin (the wrong posterior) is refused
    lo, hi = levels.standardised_edges(x, loc_t, ls_t)
    if wide:
        wrong = (lo + (hi - lo) * torch.rand(n, generator=g)).double().numpy()
        assert _ks_two_sample(wrong, accepted) > _critical(n, len(accepted))


@pytest.mark.parametrize("loc, log_scale, level", [(0.5, -4.0, 200), (0.9, -6.0, 10), (0.0, 1.0, 255)])
def test_the_abducted_noise_follows_its_posterior_deep_in_a_tail(loc, log_scale, level):
    """Where rejection cannot reach (the bin holds 1e-30 of the mass), against the
    exact truncated logistic CDF, computed in float64 in log space (one-sample KS)."""
    g = torch.Generator().manual_seed(1)
    n = 20_000
    loc_t, ls_t = torch.tensor(loc), torch.tensor(log_scale)
    x = torch.full((n,), level, dtype=torch.uint8)
    eps, _ = levels.abduct(x, loc_t, ls_t, torch.rand(n, generator=g))
    a, b = (v.double()[0] for v in levels.standardised_edges(x[:1], loc_t, ls_t))
    e = torch.sort(eps.double()).values

    def log_cdf_mass(lo, hi):  # log(sigmoid(hi) - sigmoid(lo)), lo <= hi, float64
        return levels._log_mass(lo, hi)

    cdf = torch.exp(log_cdf_mass(a.expand(n), e) - log_cdf_mass(a, b))
    i = torch.arange(1, n + 1, dtype=torch.float64)
    d = float(torch.maximum(i / n - cdf, cdf - (i - 1) / n).max())
    crit = math.sqrt(-math.log(ALPHA / 2) / 2) / math.sqrt(n)
    assert d < crit, f"KS distance {d:.4f} to the exact truncated logistic"


# ------------------------------------------------------------ the mechanism


def test_the_mechanism_decodes_once_for_noise_and_weight():
    calls = []

    def pixel_levels(ps):
        calls.append(1)
        loc = torch.full((2, 1, 2, 2), 0.3)
        return loc, torch.full_like(loc, -3.0)

    m = discretised_logistic_image(pixel_levels=pixel_levels, parents=(), latent=None, shape=(1, 2, 2))
    picture = torch.tensor([[[70, 80], [90, 255]]], dtype=torch.uint8).expand(2, 1, 2, 2)
    m.abduct(picture, {})
    assert len(calls) == 1


def test_a_picture_must_be_whole_levels_of_the_worlds_shape():
    m = discretised_logistic_image(pixel_levels=lambda ps: (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)),
                                   parents=(), latent=None, shape=(1, 2, 2))
    with pytest.raises(MechanismError, match="world's pictures are \\(1, 2, 2\\)"):
        m.log_prob(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), {})
    with pytest.raises(MechanismError, match="whole levels 0..255"):
        m.log_prob(torch.full((1, 1, 2, 2), 0.5), {})
    with pytest.raises(MechanismError, match="one of them"):
        discretised_logistic_image(parents=())


def test_a_plugin_models_bad_decoder_output_is_one_line_naming_it():
    from cvaeq.errors import PluginError

    class Broken(SwatchModel):
        def pixel_levels(self, classes, z):
            loc, ls = super().pixel_levels(classes, z)
            return loc[..., :4], ls

    from cvaeq.image_model import ImageModelAdapter

    ps = {"hue": torch.tensor([0]), "size": torch.tensor([1]), "Z": torch.zeros(1, 1)}
    # the model bare, or already behind its adapter (whose checks wrap it): its output is checked either way
    for model in (Broken(), ImageModelAdapter(Broken(), (3, 8, 8))):
        m = discretised_logistic_image(model, factors=("hue", "size"), shape=(3, 8, 8))
        with pytest.raises(PluginError, match=r"image model Broken\).*pixel_levels\(\) must return \(loc, log_sc"):
            m.assign(ps, torch.zeros(1, 3, 8, 8))


def test_build_scm_gives_an_8bit_world_the_discretised_logistic_image(swatch):
    scm = build_scm(swatch, image_model=SwatchModel())
    assert isinstance(scm.mechanisms["X"], DiscretisedLogisticImage)
    assert scm.mechanisms["X"].event_dim == 3 and scm.mechanisms["X"].shape == (3, 8, 8)

    class Binary(SwatchModel):
        pixel = "binary"

    with pytest.raises(MechanismError, match="decodes binary pixels but world 'swatch' has 8bit pixels"):
        build_scm(swatch, image_model=Binary())


# --------------------------------------------------------------- the engine


def test_the_null_intervention_gives_the_evidence_back_byte_for_byte(swatch):
    scm = build_scm(swatch, image_model=SwatchModel())
    picture = torch.as_tensor(render(RED_4)[0])
    p = abduct(scm, {"X": picture}, 64)
    assert torch.equal(predict(scm, p)["X"], picture.expand(64, 3, 8, 8))
    # and with the factual hue as an intervention, particles that abducted it replay the picture
    r = infer(scm, ["X", "hue"], {"hue": torch.tensor(0)}, {"X": picture, "hue": torch.tensor(0)},
              num_particles=64, seed=3)
    assert torch.equal(r.samples["X"], picture.expand(64, 3, 8, 8))


def _swatch_ask(story, text, picture, **kw):
    return ask(text, image=picture, model=SwatchModel(), story=story, **kw)


def test_a_colour_counterfactual_changes_the_square_and_keeps_the_background(swatch):
    picture = render(RED_4)[0]
    a = _swatch_ask(swatch, "P(X | do(hue=blue), X=img)", picture, samples=200, seed=0)
    assert a.kind == "counterfactual" and a.pixel == "8bit" and a.ess > 50
    samples = a.sample_images
    assert samples.dtype == np.uint8 and samples.shape[1:] == (3, 8, 8)
    # blue draws the size its story picks given the abducted size noise: 2, 4 or 6; every picture is
    # the grey background outside a centred 6x6 square, untouched: the same noise, the same loc
    assert np.array_equal(samples[:, :, 0, :], np.broadcast_to(picture[:, 0, :], samples[:, :, 0, :].shape))
    centre = a.mean_image[:, 3:5, 3:5].mean(axis=(1, 2))  # [R, G, B] on the [0, 1] scale
    assert centre[2] > 0.7 and centre[0] < 0.3, centre
    assert a.predicted["hue"] == "blue"


def test_a_factor_counterfactual_through_the_picture_matches_the_story_given_its_factors(swatch):
    """The picture pins hue=red, size=4 (the model's proposal reads it exactly), so
    ``P(size | do(hue=blue), X=img)`` is the story's ``P(size | do(hue=blue), hue=red, size=4)``.
    Tolerance: 1000 particles each, an ESS above 500 (the latent's prior proposal
    costs some); a probability's Monte Carlo sd is at most sqrt(0.25 / 500) =
    0.022 through the picture, 0.016 from the story, 0.028 for the difference;
    0.1 is more than 3.5 sd."""
    picture = render(RED_4)[0]
    via = _swatch_ask(swatch, "P(size | do(hue=blue), X=img)", picture, samples=1000, seed=0)
    direct = ask("P(size | do(hue=blue), hue=red, size=4)", story=swatch, samples=1000, seed=0)
    assert via.ess > 500
    for v, p in direct.distribution["size"].items():
        assert abs(via.distribution["size"][v] - p) < 0.1, (via.distribution, direct.distribution)


def test_an_image_answer_writes_colour_pngs(swatch, tmp_path):
    from PIL import Image

    picture = render(RED_4)[0]
    a = _swatch_ask(swatch, "P(X | do(hue=green), X=img)", picture, samples=20, seed=1, out=tmp_path)
    with Image.open(a.images["evidence"]) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), picture.transpose(1, 2, 0))
    with Image.open(a.images["samples"]) as im:
        assert im.mode == "RGB" and im.size == (8 * 8 + 7 * 2, 3 * 8 + 2 * 2)
        first = np.asarray(im)[:8, :8].transpose(2, 0, 1)
    assert np.array_equal(first, a.sample_images[0])
    with Image.open(a.images["mean"]) as im:
        assert im.mode == "RGB"
        assert np.array_equal(np.asarray(im), np.rint(a.mean_image * 255).astype(np.uint8).transpose(1, 2, 0))


def test_an_8bit_picture_as_evidence_is_checked(swatch):
    with pytest.raises(Exception, match="dtype float64; give integer levels"):
        _swatch_ask(swatch, "P(X | X=img)", render(RED_4)[0] / 255.0)
    with pytest.raises(QueryError, match="samples must be a positive integer"):
        _swatch_ask(swatch, "P(X | X=img)", render(RED_4)[0], samples=0)


def test_the_likelihood_trains_finite_gradients_in_every_bin_and_tail():
    """The decoder trains on ``levels.log_prob``: its value and gradient are finite
    for end bins, far tails and narrow bins alike (no difference of two
    probabilities that would round to zero)."""
    x = torch.tensor([0, 255, 3, 250, 128, 128], dtype=torch.uint8)
    loc = torch.tensor([0.9, 0.1, 0.99, 0.0, 0.5, 0.5], requires_grad=True)
    log_scale = torch.tensor([-6.0, -6.0, -7.0, -7.0, -7.0, 4.0], requires_grad=True)
    lp = levels.log_prob(x, loc, log_scale)
    lp.sum().backward()
    assert bool(torch.isfinite(lp).all()) and bool(torch.isfinite(loc.grad).all())
    assert bool(torch.isfinite(log_scale.grad).all())
    # a level 0.9 / 0.0025 = 360 noise units away: log p ~ -360, not -inf
    assert -400 < float(lp[0].detach()) < -300


def test_a_plugin_model_that_decodes_nan_is_one_line_naming_it():
    from cvaeq.errors import PluginError

    class Nan(SwatchModel):
        def pixel_levels(self, classes, z):
            loc, ls = super().pixel_levels(classes, z)
            loc[:, 1, 2, 3] = float("nan")
            return loc, ls

    m = discretised_logistic_image(Nan(), factors=("hue", "size"), shape=(3, 8, 8))
    ps = {"hue": torch.tensor([0]), "size": torch.tensor([1]), "Z": torch.zeros(1, 1)}
    with pytest.raises(PluginError, match=r"image model Nan\).*pixel_levels\(\) returned NaN"):
        m.assign(ps, torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("seed, offset", [(0, 0.0), (1, 0.0), (2, 0.0), (3, 700.0)])
def test_quantise_decides_membership_at_the_very_edges_as_abduction_does(seed, offset):
    """A noise exactly on a bin's lower edge is that level, one float below is the level
    under it: for every level, random locations and scales (the value ``loc + s * eps``
    sits on the edge, where rounding decides nothing and the edge itself must). With
    locations of hundreds (``offset``) quantise takes its two-edge path."""
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(1, 256, dtype=torch.uint8).repeat(40)
    loc = torch.rand(k.shape, generator=g) * 1.4 - 0.2 + offset
    log_scale = torch.rand(k.shape, generator=g) * 8 - 7
    lo, _ = levels.standardised_edges(k, loc, log_scale)
    assert torch.equal(levels.quantise(loc, log_scale, lo), k)
    below = torch.nextafter(lo, torch.tensor(-math.inf))
    assert torch.equal(levels.quantise(loc, log_scale, below), k - 1)


def test_copies_of_one_particle_are_decoded_once_and_get_their_own_noise():
    rows = []

    def pixel_levels(ps):
        rows.append(len(ps["Z"]))
        loc = 0.5 + 0.1 * ps["Z"][:, :1, None, None].expand(-1, 1, 2, 2)
        return loc, torch.full_like(loc, -3.0)

    m = discretised_logistic_image(pixel_levels=pixel_levels, parents=("Z",), factors=(), latent="Z", shape=(1, 2, 2))
    z = torch.tensor([[0.1], [0.1], [0.1], [-0.4], [-0.4], [0.1]])  # runs of copies, as resampling leaves them
    picture = torch.tensor([[[120, 130], [140, 150]]], dtype=torch.uint8).expand(6, 1, 2, 2)
    noise, weight = m.abduct(picture, {"Z": z})
    assert rows == [3]  # three runs, decoded once each
    assert torch.equal(m.assign({"Z": z}, noise), picture)
    assert weight[0] == weight[1] == weight[2] and not torch.equal(noise[0], noise[1])
    separately = torch.cat([m.log_prob(picture[:1], {"Z": z[i:i + 1]}) for i in range(6)])
    torch.testing.assert_close(weight, separately, rtol=1e-6, atol=1e-6)  # two float32 formulas of one number


class _Reversed(SwatchModel):
    """The swatch model with :class:`cvaeq.image_model.LevelBlocks`: its "own order" is the picture's
    pixel-channels flattened and reversed."""

    def to_level_blocks(self, x):
        return x.reshape(x.shape[0], -1).flip(-1)

    def from_level_blocks(self, blocks):
        return blocks.flip(-1).reshape(blocks.shape[0], 3, 8, 8)

    def level_blocks(self, classes, z):
        loc, log_scale = self.pixel_levels(classes, z)
        return self.to_level_blocks(loc), self.to_level_blocks(log_scale)


def test_a_decoder_in_its_own_order_answers_as_in_the_pictures_order(swatch):
    """An 8-bit model with level_blocks: the mechanism's noise is in the decoder's order, the pictures
    in and out are in theirs, and every number is the picture-order model's (the weights to float64
    rounding of a sum in another order; the replayed pixels exactly, for the same noise moved)."""
    pixels, blocks = (discretised_logistic_image(m, factors=("hue", "size"), shape=(3, 8, 8))
                      for m in (SwatchModel(), _Reversed()))
    assert pixels.blocks is None and blocks.noise_shape == (192,)
    picture = torch.as_tensor(render(RED_4)[0]).expand(5, 3, 8, 8)
    parents = {"hue": torch.zeros(5, dtype=torch.long), "size": torch.ones(5, dtype=torch.long),
               "Z": torch.linspace(-1, 1, 5)[:, None]}
    torch.testing.assert_close(blocks.log_prob(picture, parents), pixels.log_prob(picture, parents),
                               rtol=1e-12, atol=1e-9)
    noise, _ = blocks.abduct(picture, parents)
    assert noise.shape == (5, 192) and torch.equal(blocks.assign(parents, noise), picture)
    moved = {**parents, "Z": parents["Z"] + 2}
    assert torch.equal(blocks.assign(moved, noise), pixels.assign(moved, _Reversed().from_level_blocks(noise)))


def test_a_decoder_order_that_is_no_permutation_is_refused_naming_the_model():
    class Dropping(_Reversed):
        def to_level_blocks(self, x):
            return x.reshape(x.shape[0], -1)[:, :-1]  # loses a pixel-channel

    with pytest.raises(PluginError, match=r"image model Dropping\): to_level_blocks and from_level_blocks must be "
                       "inverse permutations of a picture's 192 pixel-channels"):
        discretised_logistic_image(Dropping(), factors=("hue", "size"), shape=(3, 8, 8))
