"""The Bernoulli image mechanism with a tiny image model trained here in seconds."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from cvaeq.worlds.dsprites.factors import FACTORS, SIZES
from cvaeq.worlds.dsprites.render import render
from cvaeq.engine import abduct, infer, intervene, predict
from cvaeq.errors import MechanismError, QueryError
from cvaeq.mechanisms import BernoulliImage, ImageModel, bernoulli_image
from cvaeq.mechanisms import image as image_module
from cvaeq.mechanisms.image import missing_members
from cvaeq.scm import build_scm
from cvaeq.story import load_story

HEART = [2, 3, 0, 16, 16]
SQUARE = [0, 3, 0, 16, 16]


class TinyImageModel(nn.Module):
    """Linear decoder from one-hot factors and Z, linear q(factors | X), fixed-scale q(Z | X, factors)."""

    latent_dim = 2

    def __init__(self):
        super().__init__()
        width = sum(SIZES.values())
        self.dec = nn.Linear(width + self.latent_dim, 64 * 64)
        self.cls = nn.Linear(64 * 64, width)
        self.enc = nn.Linear(64 * 64 + width, self.latent_dim)

    @staticmethod
    def onehot(classes):
        return torch.cat([nn.functional.one_hot(classes[:, i], SIZES[f]) for i, f in enumerate(FACTORS)], -1).float()

    def decode_probs(self, classes, z):
        return torch.sigmoid(self.dec(torch.cat([self.onehot(classes), z], -1))).view(-1, 64, 64)

    def factor_logits(self, x):
        out = self.cls(x.reshape(x.shape[0], -1))
        return dict(zip(FACTORS, out.split(list(SIZES.values()), -1)))

    def z_posterior(self, x, classes):
        loc = self.enc(torch.cat([x.reshape(x.shape[0], -1), self.onehot(classes)], -1))
        return loc, torch.full_like(loc, 0.5)


@pytest.fixture(scope="module")
def model():
    """Trained for a few hundred steps on the shapes at a few positions and scales."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is several times faster on a busy CPU
    torch.manual_seed(0)
    classes = np.array([[s, sc, 0, px, 16] for s in range(3) for sc in (1, 3, 5) for px in (8, 16, 24)])
    x = torch.as_tensor(render(classes), dtype=torch.float32)
    y = torch.as_tensor(classes)
    m = TinyImageModel()
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        p = m.decode_probs(y, torch.randn(len(y), 2)).clamp(1e-4, 1 - 1e-4)  # learns to ignore Z
        loss = nn.functional.binary_cross_entropy(p, x)
        logits = m.factor_logits(x)
        loss = loss + sum(nn.functional.cross_entropy(logits[f], y[:, i]) for i, f in enumerate(FACTORS))
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return m.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def scm(model):
    return build_scm(load_story(), image_model=model)


def test_the_protocol_check_names_the_member_a_model_lacks(model):
    """A model missing part of the ImageModel protocol is refused naming what it lacks;
    the decoder may be pixel_logits or decode_probs, either is enough."""
    members = {"latent_dim": 2, "decode_probs": model.decode_probs, "pixel_logits": lambda c, z: None,
               "factor_logits": model.factor_logits, "z_posterior": model.z_posterior}
    for missing, named in [("factor_logits", "factor_logits()"), ("z_posterior", "z_posterior()"),
                           (("decode_probs", "pixel_logits"), "pixel_logits() or decode_probs()")]:
        partial = type("Partial", (), {k: staticmethod(v) if callable(v) else v for k, v in members.items()
                                       if k not in (missing if isinstance(missing, tuple) else (missing,))})()
        assert missing_members(partial) == named
        assert not isinstance(partial, ImageModel) or named == "pixel_logits() or decode_probs()"
        with pytest.raises(MechanismError, match=re.escape(f"the image model has no {named}")):
            bernoulli_image(partial, factors=FACTORS)
    for decoder in ("decode_probs", "pixel_logits"):  # one decoder of the two is enough
        one = type("One", (), {k: staticmethod(v) if callable(v) else v for k, v in members.items()
                               if k != decoder})()
        assert missing_members(one) is None
        assert bernoulli_image(one, factors=FACTORS).parents == (*FACTORS, "Z")
    assert missing_members(model) is None


def test_abducted_pixel_noise_replays_the_image_exactly():
    probs = torch.rand(5, 64, 64)
    m = BernoulliImage(("a",), lambda parents: probs)
    x = (torch.rand(5, 64, 64) < 0.5).float()
    x[probs == 0] = 0.0
    u = m.abduct(x, {}).noise
    assert torch.equal(m.assign({}, u), x)
    on = x > 0.5
    assert bool((u[on] < probs[on]).all()) and bool((u[~on] >= probs[~on]).all())


@pytest.mark.parametrize("logits", [False, True])
def test_one_image_expanded_over_particles_gets_the_same_noise_as_its_copies(logits):
    """Abduction computes the on-pixels' noise only where the evidence is on, by
    columns when one image is expanded over the particles (a query's evidence):
    the numbers are those of the general path on a materialised copy, bit for bit."""
    raw = torch.randn(6, 64, 64) * 2  # no float32 probability of exactly 0 or 1
    fn = (lambda parents: raw) if logits else (lambda parents: torch.sigmoid(raw))
    m = BernoulliImage((), None, logits=fn) if logits else BernoulliImage((), fn)
    img = (torch.rand(64, 64) < 0.3).float()
    expanded = img.expand(6, 64, 64)
    assert expanded.stride(0) == 0
    torch.manual_seed(1)
    u_expanded = m.abduct(expanded, {}).noise
    torch.manual_seed(1)
    u_copied = m.abduct(expanded.clone(), {}).noise
    assert torch.equal(u_expanded, u_copied)
    assert torch.equal(m.assign({}, u_expanded), expanded)
    p = m.probs({})
    on = expanded > 0.5
    assert bool((u_expanded[on] < p[on]).all()) and bool((u_expanded[~on] >= p[~on]).all())


def test_abduction_decodes_the_image_once(scm):
    img = torch.as_tensor(render(np.array([HEART]))[0], dtype=torch.float32)
    mech = scm.mechanisms["X"]
    calls = []
    decode = mech.decode
    mech.decode = lambda parents: calls.append(1) or decode(parents)
    try:
        abduct(scm, {"X": img, **{f: torch.tensor(c) for f, c in zip(FACTORS, HEART)}}, 8)
        assert len(calls) == 1  # abduct and log_prob share one decoder pass
        other = {f: torch.zeros(8, dtype=torch.long) for f in FACTORS} | {"Z": torch.zeros(8, 2)}
        mech.log_prob(img.expand(8, 64, 64), other)
        assert len(calls) == 2  # other parents: decoded afresh
    finally:
        mech.decode = decode


def test_identical_consecutive_particles_decode_once():
    rows = []

    def decode(parents):
        rows.append(len(parents["a"]))
        return torch.sigmoid(parents["a"].double()).reshape(-1, 1, 1).expand(-1, 4, 4)

    m = BernoulliImage(("a",), decode, shape=(4, 4))
    a = torch.tensor([0.5, 0.5, 0.5, -1.0, -1.0, 0.5])  # three runs: copies of a resampled particle
    p = m.probs({"a": a})
    assert rows == [3]
    assert torch.equal(p, torch.sigmoid(a.double()).reshape(-1, 1, 1).expand(-1, 4, 4))


def test_log_prob_is_the_bernoulli_likelihood():
    probs = torch.full((2, 64, 64), 0.25)
    m = BernoulliImage((), lambda parents: probs)
    x = torch.zeros(2, 64, 64)
    x[1, :, :32] = 1
    expected = torch.tensor([4096 * np.log(0.75), 2048 * (np.log(0.75) + np.log(0.25))], dtype=torch.float64)
    assert torch.allclose(m.log_prob(x, {}), expected)


def test_build_scm_adds_the_image(scm, model):
    assert scm.graph.parents("X") == ("shape", "scale", "orientation", "posX", "posY", "Z")
    assert scm.mechanisms["Z"].dim == model.latent_dim
    with pytest.raises(QueryError, match="do\\(\\) on 'X' is not allowed"):
        intervene(scm, {"X": torch.zeros(64, 64)})


def test_factors_and_image_observed_replay_exactly(scm):
    img = torch.as_tensor(render(np.array([HEART]))[0], dtype=torch.float32)
    evidence = {"X": img, **{f: torch.tensor(c) for f, c in zip(FACTORS, HEART)}}
    p = abduct(scm, evidence, 16)
    replay = predict(scm, p)
    assert torch.equal(replay["X"], img.expand(16, 64, 64))


def test_image_only_evidence_uses_the_proposals(scm):
    img = torch.as_tensor(render(np.array([HEART]))[0], dtype=torch.float32)
    r = infer(scm, ["shape", "X"], {}, {"X": img}, 200, seed=0)
    assert 1 <= r.ess < 200  # importance weights: prior / proposal times the likelihood
    assert max(r.distribution("shape"), key=r.distribution("shape").get) == 2  # a heart
    assert torch.equal(r.samples["X"], img.expand(200, 64, 64))  # observational: X is the evidence


def test_counterfactual_square_looks_like_a_square(scm):
    heart, square = (torch.as_tensor(render(np.array([c]))[0], dtype=torch.float32) for c in (HEART, SQUARE))
    r = infer(scm, ["X", "shape"], {"shape": 0}, {"X": heart}, 100, seed=0)
    assert r.rung == "counterfactual"
    assert set(r.samples["shape"].tolist()) == {0}
    mean = r.mean_image()
    assert mean.shape == (64, 64) and float(mean.min()) >= 0 and float(mean.max()) <= 1
    assert float((mean - square).abs().mean()) < float((mean - heart).abs().mean())
    assert r.sample_images(4).shape == (4, 64, 64)


def test_same_seed_same_images(scm):
    heart = torch.as_tensor(render(np.array([HEART]))[0], dtype=torch.float32)
    a = infer(scm, ["X"], {"shape": 0}, {"X": heart}, 50, seed=3)
    b = infer(scm, ["X"], {"shape": 0}, {"X": heart}, 50, seed=3)
    assert torch.equal(a.samples["X"], b.samples["X"]) and torch.equal(a.weights, b.weights)


def test_bernoulli_image_factory_checks_its_inputs(model):
    with pytest.raises(MechanismError, match="needs an image model or a decode function"):
        bernoulli_image()
    with pytest.raises(MechanismError, match="must implement cvaeq.image_model.ImageModel"):
        bernoulli_image(object())
    bare = bernoulli_image(decode=lambda parents: torch.full((1, 64, 64), 0.5), factors=FACTORS)
    assert bare.propose(torch.zeros(1, 64, 64), ["shape"], {}) is None  # no proposal: the engine uses the prior


class ConfidentModel(TinyImageModel):
    """Decodes a heart with logits of ±30: float32 probabilities of exactly 0 and 1."""

    magnitude = 30.0

    def pixel_logits(self, classes, z):
        truth = torch.as_tensor(render(np.array([HEART] * classes.shape[0])), dtype=torch.float32)
        return (truth * 2 - 1) * self.magnitude

    def decode_probs(self, classes, z):
        return torch.sigmoid(self.pixel_logits(classes, z))


def test_a_saturated_decoder_keeps_every_image_possible():
    """One pixel off the decoder's certainty costs 30 nats, not an infinite loss;
    with logits the abducted noise replays the evidence exactly."""
    m = ConfidentModel()
    mech = bernoulli_image(m, factors=FACTORS)
    parents = {f: torch.tensor([c]) for f, c in zip(FACTORS, HEART)} | {"Z": torch.zeros(1, 2)}
    assert m.decode_probs(torch.zeros(1, 5, dtype=torch.long), None).max() == 1.0  # float32 rounds to 1
    x = torch.as_tensor(render(np.array([HEART])), dtype=torch.float32)
    on = x.nonzero()[0]
    x_flipped = x.clone()
    x_flipped[tuple(on)] = 0.0  # one pixel the decoder is sure of, flipped
    lp = mech.log_prob(x_flipped, parents)
    assert torch.isfinite(lp).all()
    assert float(lp) == pytest.approx(-30, abs=0.01)
    u = mech.abduct(x_flipped, parents).noise
    assert torch.equal(mech.assign(parents, u), x_flipped)


def test_probabilities_alone_make_that_image_impossible():
    """Without logits the same decoder gives -inf: why models should expose pixel_logits."""
    m = ConfidentModel()
    mech = bernoulli_image(decode=lambda ps: m.decode_probs(torch.stack([ps[f] for f in FACTORS], -1), ps["Z"]), factors=FACTORS)
    parents = {f: torch.tensor([c]) for f, c in zip(FACTORS, HEART)} | {"Z": torch.zeros(1, 2)}
    x = torch.as_tensor(render(np.array([HEART])), dtype=torch.float32)
    x[tuple(x.nonzero()[0])] = 0.0
    assert float(mech.log_prob(x, parents)) == float("-inf")


@pytest.mark.parametrize("magnitude", [45.0, 400.0])
def test_pixels_beyond_float64_certainty_still_replay(magnitude):
    """sigmoid(45) is exactly 1.0 in float64: an off pixel that sure to be on
    must still get noise that replays it, and keep its exact likelihood."""
    m = ConfidentModel()
    m.magnitude = magnitude
    mech = bernoulli_image(m, factors=FACTORS)
    parents = {f: torch.tensor([c] * 3) for f, c in zip(FACTORS, HEART)} | {"Z": torch.zeros(3, 2)}
    x = torch.as_tensor(render(np.array([HEART] * 3)), dtype=torch.float32)
    on, off = x[0].nonzero()[0], (x[0] == 0).nonzero()[0]
    x[0, on[0], on[1]] = 0.0  # sure-on pixel observed off
    x[1, off[0], off[1]] = 1.0  # sure-off pixel observed on
    torch.manual_seed(0)
    u = mech.abduct(x, parents).noise
    assert torch.equal(mech.assign(parents, u), x)
    lp = mech.log_prob(x, parents)
    assert lp.tolist() == pytest.approx([-magnitude, -magnitude, 0.0], abs=1e-6)


def test_a_model_with_pixel_logits_alone_answers_image_queries(model):
    # The protocol's decoder is pixel_logits or decode_probs: a family need not write both.
    from cvaeq.query.answer import ask
    from cvaeq.story import load_story

    class LogitsOnly:
        latent_dim = model.latent_dim

        def pixel_logits(self, classes, z):
            return torch.logit(model.decode_probs(classes, z).clamp(1e-6, 1 - 1e-6))

        factor_logits = staticmethod(model.factor_logits)
        z_posterior = staticmethod(model.z_posterior)

    image = render(np.array([[2, 5, 0, 16, 16]]))[0]
    a = ask("P(X | do(shape=square), X=img)", image=image, model=LogitsOnly(), story=load_story("default"),
            samples=8, seed=0)
    assert a.sample_images.shape[1:] == (64, 64) and a.rung == "counterfactual"


def test_the_proposals_categorical_draw_is_pyros_to_the_bit():
    """q(factors | X) is drawn without building a Pyro distribution: the same
    classes and log-probabilities as pyro.distributions.Categorical."""
    import pyro.distributions as dist

    from cvaeq.mechanisms.image import _categorical_draw

    logits = torch.randn(1, 7).expand(50, -1)
    torch.manual_seed(4)
    k, lq = _categorical_draw(logits)
    torch.manual_seed(4)
    q = dist.Categorical(logits=logits)
    want = q.sample()
    assert torch.equal(k, want) and torch.equal(lq, q.log_prob(want).double())


# --- exact replay near the limits, and what the noise's logit bound is for -----------------------

PIXEL_DTYPES = [torch.float64, torch.float32]


def _bound(dtype):
    """The mechanism's logit bound for the pixel noise in ``dtype``, read from the module."""
    return image_module.NOISE_LOGIT_BOUND if dtype == torch.float64 else image_module.NOISE_LOGIT_BOUND_FLOAT32


def _extreme_logits(n, dtype):
    """``[n, 64, 64]`` logits where the decoder is (nearly) sure: magnitudes from
    half the bound to a hundred times it, both signs, and some beyond float64's
    certainty (sigmoid(45) is exactly 1.0)."""
    g = torch.Generator().manual_seed(26)
    magnitude = _bound(dtype) * torch.exp(torch.empty(n, 64, 64).uniform_(np.log(0.5), np.log(100), generator=g))
    sign = torch.randint(0, 2, (n, 64, 64), generator=g) * 2 - 1
    return (magnitude * sign).float()


@pytest.mark.parametrize("dtype", PIXEL_DTYPES)
def test_pixels_the_decoder_is_sure_of_replay_exactly_whichever_way_they_are_observed(dtype):
    """Every pixel of 40 images with logits at and far beyond the bound, observed
    on or off at random (so half contradict the decoder): U | X replays X exactly,
    with U strictly below p where on and at or above it where off (X = 1[U < p])."""
    logits = _extreme_logits(40, dtype)
    m = BernoulliImage((), None, logits=lambda ps: logits, dtype=dtype)
    x = (torch.rand(40, 64, 64, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    torch.manual_seed(0)
    u = m.abduct(x, {}).noise
    p = m.probs({})
    on = x > 0.5
    assert bool((u[on] < p[on]).all()) and bool((u[~on] >= p[~on]).all())
    assert bool((u >= 0).all()) and bool((u < 1).all())
    assert torch.equal(m.assign({}, u), x)


@pytest.mark.parametrize("dtype", PIXEL_DTYPES)
@pytest.mark.parametrize("extreme", ["zero", "largest below one"])
def test_replay_holds_for_the_extreme_uniform_draws(dtype, extreme, monkeypatch):
    """The uniforms behind the abducted noise at the very ends of [0, 1): v = 0 puts
    an off pixel's noise exactly at p, and v = 1 - ulp rounds an on pixel's p v up to
    p; the replay must hold for those draws too, for every probability."""
    logits = torch.cat([_extreme_logits(2, dtype), torch.randn(2, 64, 64) * 4]).float()
    m = BernoulliImage((), None, logits=lambda ps: logits, dtype=dtype)
    x = (torch.rand(4, 64, 64, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    real_rand = torch.rand

    def rand(*shape, dtype=None, **kw):
        one = torch.ones((), dtype=dtype)
        v = torch.zeros((), dtype=dtype) if extreme == "zero" else torch.nextafter(one, torch.zeros_like(one))
        return v.expand(*real_rand(*shape, dtype=dtype, **kw).shape).clone()

    # and a decoder of probabilities (no logits) down to float32's subnormals: sigmoid(-90) = 8e-40
    tiny = torch.logspace(-45, 0, 64 * 64, dtype=torch.float64).float().reshape(1, 64, 64)
    probs = torch.cat([tiny, 1 - tiny, torch.rand(2, 64, 64)])
    byprobs = BernoulliImage((), lambda ps: probs)
    xp = (torch.rand(4, 64, 64, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    xp[probs == 0], xp[probs == 1] = 0.0, 1.0  # what those probabilities make impossible
    monkeypatch.setattr(torch, "rand", rand)
    u = m.abduct(x, {}).noise
    up = byprobs.abduct(xp, {}).noise
    monkeypatch.undo()
    assert torch.equal(m.assign({}, u), x)
    assert torch.equal(byprobs.assign({}, up), xp)


@pytest.mark.parametrize("dtype", PIXEL_DTYPES)
def test_the_noise_logit_bound_leaves_room_for_noise_and_keeps_every_probability(dtype):
    """What NOISE_LOGIT_BOUND is for: clamping the logits for the noise must
    (1) keep sigmoid(±bound) strictly inside (0, 1) in the pixel dtype, with more
    than one float between it and the end, so that an off pixel the decoder is sure
    is on still has noise (p, 1) to replay it; and (2) change no probability by more
    than the documented precision (float64: "a change of probability below 1e-13";
    float32: evaluation's "~1e-6 in each probability"): the pixels a decoder is sure
    of keep their probability, as sampled."""
    bound = _bound(dtype)
    # the noise's probabilities of logits far beyond the bound, as the mechanism computes them
    # (float64 clamps the logits; float32 clamps p itself, 2^-23 from 0 and 1)
    far = torch.tensor([-1e4, -4 * bound, 4 * bound, 1e4]).reshape(1, 1, 4)
    extreme = BernoulliImage((), None, logits=lambda ps: far, shape=(1, 4), dtype=dtype).probs({}).reshape(-1)
    assert extreme.dtype == dtype
    assert float(extreme.max()) < 1.0  # [p, 1) holds p
    assert float(extreme.min()) > 0.0  # [0, p) holds 0
    tolerance = 1e-13 if dtype == torch.float64 else 1e-5
    logits = torch.linspace(-4 * bound - 50, 4 * bound + 50, 4001, dtype=torch.float64)
    m = BernoulliImage((), None, logits=lambda ps: logits.reshape(1, 1, -1).float(), shape=(1, 4001), dtype=dtype)
    p = m.probs({}).double().reshape(-1)
    exact = torch.sigmoid(logits.float().double())
    assert float((p - exact).abs().max()) <= tolerance
    # sampled: a pixel of logit 8 is on 99.97% of the time, not sigmoid(3) = 95% (a bound of 3 would say)
    sure = BernoulliImage((), None, logits=lambda ps: torch.full((20000, 1, 1), 8.0), shape=(1, 1), dtype=dtype)
    torch.manual_seed(3)
    draws = sure.assign({}, sure.noise_prior(20000).sample())
    p8 = float(torch.sigmoid(torch.tensor(8.0)))
    assert float(draws.mean()) == pytest.approx(p8, abs=4 * np.sqrt(p8 * (1 - p8) / 20000))
