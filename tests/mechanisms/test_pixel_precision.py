"""The image mechanism's pixel noise in float32 (the default since 2026-12-07).

Two things are pinned here. Abduction stays exact: whatever the decoder's
logits, however extreme, the abducted float32 noise replays every evidence
pixel under the same parents, byte for byte. And the answers agree with the
float64 noise queries drew before, within Monte Carlo error.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cvaeq.mechanisms import BernoulliImage
from cvaeq.mechanisms.image import NOISE_PROB_FLOOR_FLOAT32

EXTREME = [0.0, 1e-30, -1e-30, 15.9, -15.9, 16.0, -16.0, 16.7, 17.0, -17.0, 30.0, -30.0, 88.0, -104.0,
           1e4, -1e4, 3.4e38, -3.4e38, float("inf"), float("-inf")]
logit = st.one_of(st.sampled_from(EXTREME), st.floats(width=32, allow_nan=False, allow_infinity=True))


def _mechanism(raw: torch.Tensor, dtype: torch.dtype) -> BernoulliImage:
    return BernoulliImage((), None, logits=lambda parents: raw, shape=tuple(raw.shape[1:]), dtype=dtype)


@settings(max_examples=150, deadline=None)
@given(
    raw=arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)), elements=logit),
    pixels=st.data(),
    expanded=st.booleans(),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_abducted_noise_replays_every_pixel_for_any_logits(dtype, raw, pixels, expanded, seed):
    """Any pixel value under any logit (0, tiny, around float32's sigmoid
    saturation at ~16.6, float64's at ~37, huge, infinite): the noise lies in
    [0, p) for an on pixel and [p, 1) for an off one, and ``assign`` with the
    same parents gives the evidence back exactly; both for a batch of images
    (the flat-index path) and one image expanded over the particles (a query's)."""
    s, h, w = raw.shape
    if expanded:
        one = pixels.draw(arrays(np.float32, (h, w), elements=st.sampled_from([0.0, 1.0])))
        x = torch.from_numpy(one).expand(s, h, w)
    else:
        x = torch.from_numpy(pixels.draw(arrays(np.float32, (s, h, w), elements=st.sampled_from([0.0, 1.0]))))
    m = _mechanism(torch.from_numpy(raw), dtype)
    torch.manual_seed(seed)
    u = m.abduct(x, {}).noise
    assert u.dtype == dtype
    p = m.probs({})
    assert bool((p > 0).all()) and bool((p < 1).all())
    on = x > 0.5
    assert bool((u >= 0).all()) and bool((u < 1).all())
    assert bool((u[on] < p[on]).all()) and bool((u[~on] >= p[~on]).all())
    assert torch.equal(m.assign({}, u), x.to(torch.get_default_dtype()))


def test_the_float32_probability_bound_is_where_the_docs_say():
    """``p`` stays 2^-23 from 0 and 1 (the second float32 below 1), and a logit
    inside the bound keeps its own float32 sigmoid."""
    raw = torch.tensor([[[-1e9, -20.0, 0.0, 3.0, 20.0, 1e9]]])
    p = _mechanism(raw, torch.float32).probs({})
    one = torch.ones((), dtype=torch.float32)
    below = torch.nextafter(torch.nextafter(one, one * 0), one * 0)
    assert p.dtype == torch.float32
    assert float(p[0, 0, 0]) == float(p[0, 0, 1]) == NOISE_PROB_FLOOR_FLOAT32
    assert float(p[0, 0, -1]) == float(p[0, 0, -2]) == float(below) == 1 - NOISE_PROB_FLOOR_FLOAT32
    assert torch.equal(p[0, 0, 2:4], torch.sigmoid(raw[0, 0, 2:4]))


class _Precision:
    """The shipped image model with its pixel arithmetic set to ``dtype``."""

    def __init__(self, model, dtype):
        self.model, self.pixel_dtype = model, dtype

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.fixture(scope="module")
def shipped():
    from cvaeq.loading import load_model, shipped_checkpoint

    if shipped_checkpoint() is None:
        pytest.skip("the shipped checkpoint is not installed")
    return load_model()


def _on_chance(scm, factual, counterfactual, x):
    """``[S, H, W]`` the chance that each particle's counterfactual pixel is on,
    its noise drawn from ``U | x`` with the SCM's own pixel probabilities ``p``
    (factual) and ``p'`` (counterfactual): ``min(p', p) / p`` at an on pixel (U
    uniform below p), ``max(p' - p, 0) / (1 - p)`` at an off one (U uniform above p)."""
    m = scm.mechanisms["X"]
    p = m.probs({k: factual[k] for k in m.parents}).double()
    q = m.probs({k: counterfactual[k] for k in m.parents}).double()
    on = x.double()
    return on * torch.minimum(q, p) / p + (1 - on) * (q - p).clamp(min=0) / (1 - p)


@pytest.mark.parametrize("query", ["P(X | do(shape=square), X=img)", "P(X | do(posX=0.2), X=img)"])
def test_float32_and_float64_noise_give_the_same_answer_within_monte_carlo_error(shipped, query):
    """The golden image counterfactuals with the float64 pixel noise queries drew
    before and the float32 noise they draw now, 2,000 particles.

    With the same seed and no resampling the particles (factors, Z, weights) are
    identical, so the two mean images differ only through the pixel noise. Given
    the particles, pixel j of a mean image is ``sum_i w_i B_ij`` over independent
    Bernoulli draws whose chances ``c_ij`` are known (:func:`_on_chance`, from
    each SCM's own probabilities). So (1) the answers' expectations differ only
    by what the bounds on ``p`` change, computed exactly: below 1e-5 at every
    pixel; and (2) the difference of the two answers, less that, is a sum of
    independent zero-mean terms bounded by ``M = max w_i`` with variance
    ``s^2 = sum_i w_i^2 (c_ij (1 - c_ij) + c'_ij (1 - c'_ij))``, so by Bernstein's
    inequality it exceeds ``t = L M / 3 + sqrt((L M / 3)^2 + 2 L s^2)`` with
    chance at most ``2 exp(-L) = 1e-6`` (``L = ln 2e6``) per pixel, 0.4% over the
    4,096 pixels. (A z-score test would not do: a pixel whose chance is 0.998 in
    a few heavy particles flips with a small chance and then lies 15 of its
    standard deviations away.) t stays below 0.1 (0.01 where a pixel is sure): a
    pixel off by a tenth would show."""
    from cvaeq.engine import abduct, intervene, predict
    from cvaeq.images import load_image
    from cvaeq.query import parse
    from cvaeq.query.resolution import resolve
    from cvaeq.scm import build_scm

    golden = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"
    r = resolve(parse(query), shipped.story, {"img": load_image(golden)})
    x = torch.as_tensor(r.evidence["X"], dtype=torch.float32)
    do = {f: torch.tensor(c) for f, c in r.interventions.items()}
    names = shipped.story.world.names
    runs = []
    for dtype in (torch.float64, torch.float32):
        scm = build_scm(shipped.story, shipped.factor_logits, image_model=_Precision(shipped.image_model, dtype))
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(3)
            particles = abduct(scm, {"X": x}, 2000, resample_below=0.0)
            assert particles.noise["X"].dtype == dtype
            out = predict(intervene(scm, do), particles)
            chance = _on_chance(scm, particles.values, out, x)
        w = particles.weights.double()
        runs.append((particles, torch.einsum("s,shw->hw", w, out["X"].double()),
                     torch.einsum("s,shw->hw", w, chance), torch.einsum("s,shw->hw", w**2, chance * (1 - chance))))
    (p64, mean64, exp64, var64), (p32, mean32, exp32, var32) = runs
    assert torch.equal(p64.log_weights, p32.log_weights)
    assert all(torch.equal(p64.values[f], p32.values[f]) for f in (*names, "Z"))
    bias = exp32 - exp64
    assert float(bias.abs().max()) < 1e-5
    L, M = np.log(2e6), float(p32.weights.max())
    t = L * M / 3 + (((L * M / 3) ** 2) + 2 * L * (var64 + var32)).sqrt()
    assert float(t.max()) < 0.1
    assert bool(((mean32 - mean64 - bias).abs() <= t).all())
    assert float((mean32 - mean64).abs().sum()) > 0  # the streams are not the same numbers
