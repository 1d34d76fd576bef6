"""Continuous factors' invertible mechanisms: exact abduction, densities, DeepSCM's counterfactuals.

Float tolerances: the replayed value is the law's forward map of its own
inverse, both float64 closed forms of a few operations (a logit and a sigmoid
at most); they agree to a few ulps of the value, so ``rel=1e-9`` (a
thousand-fold margin over float64's 2e-16 per operation) separates a correct
inverse from a wrong one, which would be off by order 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs

from cvaeq.engine import infer
from cvaeq.errors import QueryError, StoryError
from cvaeq.invertible import Law, LawError, Noise
from cvaeq.mechanisms.base import checked_value
from cvaeq.mechanisms.continuous import ContinuousMechanism
from cvaeq.scm import build_scm
from cvaeq.story import load_story, story_from_text

F64 = torch.float64
DEEPSCM = load_story("morphomnist")


def _t(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=F64)


LINK_SUPPORT = {"identity": (-1e3, 1e3), "sigmoid": (1e-6, 1 - 1e-6), "exp": (1e-6, 1e3)}
NOISE = {
    "normal": Noise("normal"),
    "logistic": Noise("logistic"),
    "uniform": Noise("uniform"),
    "gamma": Noise("gamma", 10.0, 5.0),
}


@settings(max_examples=200, deadline=None)
@given(
    link=hs.sampled_from(["identity", "sigmoid", "exp"]),
    noise=hs.sampled_from(sorted(NOISE)),
    offset=hs.floats(-50, 50),
    gain=hs.floats(0.1, 200),
    bias=hs.floats(-5, 5),
    weight=hs.floats(-3, 3),
    scale=hs.floats(0.05, 3),
    parent=hs.floats(-4, 4),
    where=hs.floats(0.001, 0.999),
)
def test_any_value_and_parents_the_abducted_noise_replays_the_value(
    link, noise, offset, gain, bias, weight, scale, parent, where
):
    law = Law(("p",), link, offset, gain, bias, {"p": weight}, scale, NOISE[noise])
    m = ContinuousMechanism(("p",), law, {"p": None})
    lo, hi = LINK_SUPPORT[link]
    # a value in the law's support: offset + gain * y for a y the link reaches, with in-support noise
    y = lo + where * (hi - lo)
    value = _t([offset + gain * y])
    parents = {"p": _t([parent])}
    noise_, log_p = m.abduct(value, parents)
    if not torch.isfinite(log_p).all():  # the noise this value needs is off the base's support
        n = law.noise_of(value.numpy(), {"p": np.array([weight * parent])})
        assert not (NOISE[noise].low < n[0] < NOISE[noise].high)
        return
    replayed = m.assign(parents, noise_)
    assert replayed.dtype == F64
    assert replayed.item() == pytest.approx(value.item(), rel=1e-9, abs=1e-9 * gain)
    assert torch.equal(log_p, m.log_prob(value, parents))


@pytest.mark.parametrize("link", ["identity", "sigmoid", "exp"])
@pytest.mark.parametrize("noise", sorted(NOISE))
def test_the_density_is_the_derivative_of_the_cdf(link, noise):
    """log_prob is the base density at the inverse plus the log-Jacobian: it must equal the
    slope of P(value <= v) = F_noise(inverse(v)) (monotone increasing), by central differences."""
    law = Law(("p",), link, 3.0, 2.0, 0.3, {"p": 0.5}, 0.7, NOISE[noise])
    base = {"normal": st.norm(), "logistic": st.logistic(), "uniform": st.uniform(), "gamma": st.gamma(10, scale=0.2)}
    terms = {"p": np.array([0.5 * 1.2])}
    n0 = {"normal": 0.3, "logistic": -0.4, "uniform": 0.6, "gamma": 1.8}[noise]
    v = law.assign(terms, np.array([n0]))
    h = 1e-5 * max(1.0, abs(v[0]))
    cdf = base[noise].cdf(law.noise_of(np.array([v[0] - h, v[0] + h]), {"p": np.repeat(terms["p"], 2)}))
    assert math.exp(law.log_prob(v, terms)[0]) == pytest.approx((cdf[1] - cdf[0]) / (2 * h), rel=1e-5)


def test_a_value_off_the_support_has_density_zero_and_a_finite_noise():
    m = build_scm(DEEPSCM).mechanisms["intensity"]
    noise, log_p = m.abduct(_t([50.0, 255.5, 150.0]), {"thickness": _t([2.0, 2.0, 2.0])})
    assert log_p[:2].tolist() == [-math.inf, -math.inf] and math.isfinite(log_p[2])
    assert torch.isfinite(noise).all()


def test_the_deepscm_counterfactual_equals_its_closed_form():
    """do(thickness=t') given (t, i): i' = 64 + 191 sigmoid(logit((i - 64) / 191) + 2 (t' - t))."""
    scm = build_scm(DEEPSCM)
    for t, i, t2 in [(2.0, 150.0, 4.0), (1.1, 70.0, 5.5), (5.0, 254.0, 0.9), (2.5, 158.5, 2.5)]:
        r = infer(scm, ["intensity", "thickness"], {"thickness": t2}, {"thickness": t, "intensity": i}, 50, seed=3)
        y = (i - 64) / 191
        expected = 64 + 191 / (1 + math.exp(-(math.log(y / (1 - y)) + 2 * (t2 - t))))
        assert r.samples["intensity"].dtype == F64
        assert r.samples["intensity"].tolist() == pytest.approx([expected] * 50, rel=1e-12)
        assert r.samples["thickness"].tolist() == [t2] * 50
        assert r.ess == pytest.approx(50)


def test_a_null_intervention_gives_the_evidence_back_exactly():
    scm = build_scm(DEEPSCM)
    r = infer(scm, ["intensity"], {"digit": 3}, {"digit": 3, "thickness": 2.0, "intensity": 151.25}, 20, seed=0)
    assert r.samples["intensity"].tolist() == [151.25] * 20


def test_interventional_samples_follow_the_law():
    """do(thickness=4): intensity = 64 + 191 sigmoid(0.5 e + 3); its quantiles are the law's."""
    r = infer(build_scm(DEEPSCM), ["intensity"], {"thickness": 4.0}, None, 20000, seed=0)
    for q, got in r.quantiles("intensity", (0.1, 0.5, 0.9)).items():
        expected = 64 + 191 / (1 + math.exp(-(0.5 * st.norm.ppf(q) + 3)))
        assert got == pytest.approx(expected, abs=0.3)  # MC: the quantile's sd is ~0.05 grey level here


def test_the_thickness_posterior_given_an_intensity_is_the_bayes_posterior():
    """P(thickness | intensity=200) by the engine (prior draws weighted by the density) against
    quadrature of prior x likelihood."""
    r = infer(build_scm(DEEPSCM), ["thickness"], None, {"intensity": 200.0}, 40000, seed=1)
    law_t, law_i = DEEPSCM.law("thickness"), DEEPSCM.law("intensity")
    grid = np.linspace(0.5001, 8, 20001)
    dens = np.exp(law_t.log_prob(grid, {}) + law_i.log_prob(np.full_like(grid, 200.0), {"thickness": 2 * grid}))
    mean = float((grid * dens).sum() / dens.sum())
    assert r.expectation("thickness") == pytest.approx(mean, abs=0.01)  # MC sd ~0.002 at ESS ~3,000


def test_checked_value_takes_numbers_in_the_interval_as_float64():
    m = build_scm(DEEPSCM).mechanisms["thickness"]
    assert checked_value(m, "thickness", 2.3, "do(thickness=2.3)").dtype == F64
    assert checked_value(m, "thickness", 2.3, "x").item() == 2.3  # not rounded through float32
    for bad in (-1.0, 12.5, float("nan"), float("inf")):
        with pytest.raises(QueryError, match="off the domain; thickness takes a number from 0 to 12"):
            checked_value(m, "thickness", bad, "do(thickness=...)")
    with pytest.raises(QueryError, match="not a number"):
        checked_value(m, "thickness", "thick", "do(thickness=thick)")


def test_the_story_samples_float64_values_that_match_the_data_description():
    x = DEEPSCM.sample(50000, np.random.default_rng(0))
    assert x.dtype == np.float64 and x.shape == (50000, 3)
    assert set(np.unique(x[:, 0])) == set(range(10))
    assert x[:, 1].min() > 0.5 and 64 < x[:, 2].min() and x[:, 2].max() < 255
    assert x[:, 1].mean() == pytest.approx(2.5, abs=0.01)  # 0.5 + 10 / 5
    assert np.corrcoef(x[:, 1], x[:, 2])[0, 1] == pytest.approx(0.91, abs=0.01)  # the README's 0.91


def test_the_story_log_prob_is_the_sum_of_the_laws_densities():
    x = np.array([[3.0, 2.0, 150.0], [7.0, 0.4, 150.0]])
    lp = DEEPSCM.log_prob(x)
    t_dens = st.gamma(10, scale=0.2).logpdf(1.5)
    y = (150 - 64) / 191
    u = math.log(y / (1 - y))
    i_dens = st.norm(0, 0.5).logpdf(u - (2 * 2.0 - 5)) - math.log(191 * y * (1 - y))
    assert lp[0] == pytest.approx(math.log(0.1) + t_dens + i_dens, rel=1e-12)
    assert lp[1] == -math.inf  # thickness 0.4 < 0.5: impossible


def test_same_as_compares_the_laws():
    changed = DEEPSCM.text.replace("bias = -5", "bias = -4")
    assert DEEPSCM.same_as(story_from_text(DEEPSCM.text + "\n# a comment", source="x"))
    assert not DEEPSCM.same_as(story_from_text(changed, source="x"))


BAD = [
    ('[factors.thickness.continuous]\noffset = 0.5\nnoise = "gamma"', "noise gamma needs its parameters"),
    ("[factors.thickness.continuous]\nlink = \"tanh\"", "link must be one of identity, sigmoid, exp"),
    ("[factors.thickness.continuous]\ngain = -1", "gain and scale must be > 0"),
    ("[factors.thickness.continuous]\nscael = 1", "unknown key 'scael'"),
    ("[factors.thickness.continuous]\nweights = { digit = 1 }", "'digit', which is not a parent"),
    ('probs = "uniform"', "thickness is continuous"),
    ("[factors.thickness.continuous]\nlearn = \"yes\"", "learn must be true or false"),
    ('[factors.thickness.continuous]\nlearn = true\nnoise = "logistic"', "a learned law has normal noise"),
    ("[factors.thickness.continuous]\nlearn = true\noffset = 0.5", "offset fixes a learned law's frame"),
    ('[factors.thickness.continuous]\nlearn = true\nlink = "exp"\ngain = 2', "needs both offset and gain"),
    ('[factors.thickness.continuous]\nlearn = true\nlink = "tanh"', "link must be one of identity"),
    ("[factors.thickness.continuous]\nlearn = true\nscael = 1", "unknown key 'scael'"),
]


@pytest.mark.parametrize("table, message", BAD)
def test_a_bad_law_is_a_story_error_naming_the_file_the_factor_and_the_fix(table, message):
    text = DEEPSCM.text.split("[factors.thickness]")[0] + "[factors.thickness]\nparents = []\n" + table + "\n"
    text += "[factors.intensity]" + DEEPSCM.text.split("[factors.intensity]")[1]
    with pytest.raises(StoryError) as info:
        story_from_text(text, source="mine.toml")
    assert str(info.value).startswith("mine.toml: factor 'thickness': ")
    assert message in str(info.value)


def test_a_categorical_parent_takes_a_weight_per_label():
    text = DEEPSCM.text.replace(
        'parents = ["thickness"]', 'parents = ["thickness", "digit"]'
    ).replace("weights = { thickness = 2 }", 'weights = { thickness = 2, digit = { "1" = -1.0, "7" = 0.5 } }')
    story = story_from_text(text, source="x")
    x = np.array([[1, 2.0, 150.0], [7, 2.0, 150.0], [3, 2.0, 150.0]])
    m = build_scm(story).mechanisms["intensity"]
    noise = m.abduct_noise(_t(x[:, 2]), {"thickness": _t(x[:, 1]), "digit": torch.tensor([1, 7, 3])})
    base = noise[2].item()
    assert noise[0].item() == pytest.approx(base + 1.0 / 0.5) and noise[1].item() == pytest.approx(base - 0.5 / 0.5)
    with pytest.raises(StoryError, match="unknown value 'x' of 'digit'"):
        story_from_text(text.replace('"7" = 0.5', '"x" = 0.5'), source="x")
    with pytest.raises(StoryError, match="a categorical parent takes a number per label"):
        story_from_text(text.replace('digit = { "1" = -1.0, "7" = 0.5 }', "digit = 1"), source="x")


def test_a_factor_with_classes_cannot_have_a_continuous_parent():
    text = DEEPSCM.text.replace('[factors.digit]\nparents = []', '[factors.digit]\nparents = ["thickness"]')
    with pytest.raises(StoryError, match="factor 'digit': parent 'thickness' is continuous, and a factor with classes"):
        story_from_text(text, source="x")


def test_a_law_round_trips_through_its_json_table():
    law = DEEPSCM.law("intensity")
    assert Law.from_dict(law.to_dict(), law.parents) == law
    with pytest.raises(LawError):
        Law.from_dict({"noise": {"kind": "gamma", "shape": 0, "rate": 1}}, ())


def test_a_family_of_the_wrong_kind_is_refused_by_name():
    from cvaeq.errors import MechanismError

    gumbel_thickness = DEEPSCM.text.replace("[factors.thickness]\nparents = []", '[factors.thickness]\nparents = []\nmechanism = "gumbel_max"')
    with pytest.raises(MechanismError, match="'gumbel_max' cannot be the mechanism of 'thickness', a continuous factor"):
        build_scm(story_from_text(gumbel_thickness, source="x"))
    continuous_digit = DEEPSCM.text.replace('[factors.digit]\nparents = []', '[factors.digit]\nparents = []\nmechanism = "continuous"')
    with pytest.raises(MechanismError, match="the continuous mechanism is for continuous factors"):
        build_scm(story_from_text(continuous_digit, source="x"))


def test_read_factors_reads_a_continuous_factor_off_its_normal():
    from cvaeq.query.answer import read_factors
    from cvaeq.world import Factor, World

    class Reader:
        def factor_logits(self, x):
            return {"c": torch.tensor([[0.0, 2.0]])}

        def factor_normals(self, x):
            return {"t": (torch.tensor([1.25], dtype=F64), torch.tensor([-1.0], dtype=F64))}

    world = World("tinyc", (Factor("c", labels=("a", "b")), Factor("t", low=-10, high=10)), image_shape=(2, 2), pixel="8bit")
    assert read_factors(Reader(), np.full((2, 2), 128, np.uint8), world) == {"c": "b", "t": "1.25"}


def test_the_abducted_noise_replays_the_value_bit_for_bit():
    """A null intervention on thickness recomputes intensity from its noise: it gives the value
    back exactly (the noise is moved to a float whose forward map is the value) for all but a few
    in 100,000 (values no float64 noise reproduces: then within an ulp)."""
    x = DEEPSCM.sample(50000, np.random.default_rng(3))
    m = build_scm(DEEPSCM).mechanisms["intensity"]
    t, i = _t(x[:, 1]), _t(x[:, 2])
    back = m.assign({"thickness": t}, m.abduct_noise(i, {"thickness": t}))
    exact = float((back == i).double().mean())
    assert exact >= 0.9998
    assert torch.allclose(back, i, rtol=1e-15, atol=0)


def _learned(intensity_table: str):
    """DeepSCM's story with intensity's law replaced by ``intensity_table`` (a learned one)."""
    head = DEEPSCM.text.split("[factors.intensity.continuous]")[0]
    return story_from_text(head + "[factors.intensity.continuous]\n" + intensity_table, source="learned.toml")


def test_a_learned_law_without_a_guess_is_refused_until_a_model_fits_it():
    story = _learned('learn = true\nlink = "sigmoid"\n')
    assert set(story.learned) == {"intensity"} and story.learned["intensity"].links == ("sigmoid",)
    rows = DEEPSCM.sample(3, np.random.default_rng(0))
    for call in (lambda: story.sample(3, np.random.default_rng(0)), lambda: story.log_prob(rows),
                 lambda: story.law("intensity"), lambda: build_scm(story)):
        with pytest.raises(StoryError) as info:
            call()
        message = str(info.value)
        assert message.startswith("learned.toml: the law of 'intensity' is learned from data (learn = true)")
        assert "cvaeq train" in message and "[factors.intensity.continuous]" in message
    # the fitted law, as a model's checkpoint gives it, makes the SCM
    from cvaeq.invertible import fit_laws

    fitted = fit_laws(story, DEEPSCM.sample(4000, np.random.default_rng(0)), only=["intensity"])
    scm = build_scm(story, laws=fitted)
    r = infer(scm, ["intensity"], {"thickness": 4.0}, {"thickness": 2.0, "intensity": 150.0}, 5, seed=0)
    w = fitted["intensity"]["weights"]["thickness"]
    off, gain = fitted["intensity"]["offset"], fitted["intensity"]["gain"]
    y = (150 - off) / gain
    expected = off + gain / (1 + math.exp(-(math.log(y / (1 - y)) + w * 2)))
    assert r.samples["intensity"].tolist() == pytest.approx([expected] * 5, rel=1e-12)


def test_a_learned_laws_stated_numbers_are_the_guess_the_story_samples_from():
    """With a guess (here DeepSCM's numbers), the story samples and scores as the stated law does."""
    stated = DEEPSCM.text.split("[factors.intensity.continuous]")[1]
    story = _learned("learn = true" + stated)
    assert story.learned["intensity"].guess and story.learned["intensity"].frame == (64.0, 191.0)
    assert story.laws == DEEPSCM.laws and not story.same_as(DEEPSCM)  # same numbers, but learned
    rng = np.random.default_rng
    assert np.array_equal(story.sample(50, rng(1)), DEEPSCM.sample(50, rng(1)))
    x = DEEPSCM.sample(50, rng(2))
    assert np.array_equal(story.log_prob(x), DEEPSCM.log_prob(x))
    # learn = false is the stated law
    assert _learned("learn = false" + stated).same_as(DEEPSCM)


def test_a_learned_law_keeps_the_form_its_story_gives():
    """link and frame stated: the fit keeps them, and recovers DeepSCM's numbers from its own draws
    (4000 rows: standard errors about 0.02 on the weight, 0.05 on the bias, 0.006 on the scale)."""
    from cvaeq.invertible import fit_laws

    story = _learned('learn = true\nlink = "sigmoid"\noffset = 64\ngain = 191\nnoise = "normal"\n')
    law = fit_laws(story, DEEPSCM.sample(4000, np.random.default_rng(0)), only=["intensity"])["intensity"]
    assert (law["link"], law["offset"], law["gain"]) == ("sigmoid", 64.0, 191.0)
    assert law["weights"]["thickness"] == pytest.approx(2.0, abs=0.08)
    assert law["bias"] == pytest.approx(-5.0, abs=0.2)
    assert law["scale"] == pytest.approx(0.5, abs=0.025)
