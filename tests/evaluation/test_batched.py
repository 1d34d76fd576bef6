import numpy as np
import torch

from cvaeq.engine import infer
from cvaeq.engine import abduct_groups, group_mean, predict_groups
from cvaeq.evaluation.heldout import draw_heldout, render_float
from cvaeq.image_model import ImageModelAdapter
from cvaeq.scm import build_scm
from cvaeq.story import load_story

STORY = load_story()
SHAPE = STORY.world.image_shape


def test_one_group_is_exactly_infer(analytic_model):
    classes = draw_heldout(1, 0, STORY)
    scm = build_scm(STORY, image_model=ImageModelAdapter(analytic_model(classes), SHAPE))
    x = render_float(classes, STORY.world)
    r = infer(scm, ["X"], {"shape": 2}, {"X": x[0]}, 32, seed=7, resample_below=0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        g = abduct_groups(scm, {"X": x}, 32)
        out = predict_groups(g, {"shape": torch.tensor([2])})
    assert torch.equal(out["X"][0], r.samples["X"])
    assert torch.allclose(group_mean(g, out["X"])[0].float(), r.mean_image())


def test_groups_are_normalised_separately_and_give_each_image_its_likelihood(analytic_model):
    classes = draw_heldout(3, 1, STORY)
    scm = build_scm(STORY, image_model=ImageModelAdapter(analytic_model(classes), SHAPE))
    torch.manual_seed(0)
    g = abduct_groups(scm, {"X": render_float(classes, STORY.world)}, 16)
    assert torch.allclose(g.weights.sum(1), torch.ones(3, dtype=torch.float64))
    # decoder = renderer clamped at 0.001: log p(x) = 4096 log 0.999 + log p(factors)
    expected = 4096 * np.log(0.999) + STORY.log_prob(classes)
    assert np.allclose(g.log_marginal().numpy(), expected, atol=0.01)


def test_an_encoding_reads_q_factors_once_per_run_of_identical_images(analytic_model):
    classes = draw_heldout(2, 2, STORY)
    calls = []
    model = analytic_model(classes)
    inner = model.factor_logits
    model.factor_logits = lambda x: calls.append(len(x)) or inner(x)
    x = render_float(classes, STORY.world).repeat_interleave(5, 0)
    out = ImageModelAdapter(model, SHAPE).encode(x).factor_logits()
    assert calls == [2]
    assert torch.equal(out["posX"], inner(x)["posX"])


def test_weigh_only_abducts_the_same_weights_without_pixel_noise(analytic_model):
    import pytest

    from cvaeq.errors import MechanismError

    classes = draw_heldout(3, 4, STORY)
    scm = build_scm(STORY, image_model=ImageModelAdapter(analytic_model(classes), SHAPE))
    x = render_float(classes, STORY.world)
    runs = []
    for weigh_only in ((), ("X",)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
            runs.append(abduct_groups(scm, {"X": x}, 16, resample_below=0.0, weigh_only=weigh_only))
    full, weighed = runs
    assert torch.equal(full.log_weights, weighed.log_weights)
    assert all(torch.equal(full.particles.values[v], weighed.particles.values[v]) for v in ("shape", "Z"))
    assert "X" in full.particles.noise and "X" not in weighed.particles.noise
    with pytest.raises(MechanismError, match="no noise for 'X'"):
        predict_groups(weighed, {"shape": torch.zeros(len(x), dtype=torch.long)})


def test_float32_pixels_agree_with_float64_to_float_precision():
    from cvaeq.loading import load_model, shipped_checkpoint

    if shipped_checkpoint() is None:
        import pytest

        pytest.skip("the shipped checkpoint is not installed")
    model = load_model().image_model
    classes = draw_heldout(2, 6, STORY)
    x = render_float(classes, STORY.world)
    weights = []
    for dtype in (torch.float64, torch.float32):
        scm = build_scm(STORY, image_model=ImageModelAdapter(model, SHAPE, pixel_dtype=dtype))
        assert scm.mechanisms["X"].dtype == dtype
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(1)
            g = abduct_groups(scm, {"X": x}, 8, resample_below=0.0)
        assert g.particles.noise["X"].dtype == dtype
        weights.append(g.log_weights)
    assert torch.allclose(weights[0], weights[1], atol=1e-2, rtol=0)  # log-likelihoods of ~-20 nats


def test_a_split_encoder_reads_each_image_once_for_both_encoders_and_agrees():
    from cvaeq.loading import load_model, shipped_checkpoint

    if shipped_checkpoint() is None:
        import pytest

        pytest.skip("the shipped checkpoint is not installed")
    model = load_model().image_model
    x = render_float(draw_heldout(2, 7, STORY), STORY.world).repeat_interleave(5, 0)
    classes = torch.from_numpy(draw_heldout(10, 8, STORY))
    seen = []
    real = model.features

    class Counting:
        latent_dim = model.latent_dim

        def features(self, images):
            seen.append(len(images))
            return real(images)

        pixel_logits, factor_logits, z_posterior = model.pixel_logits, model.factor_logits, model.z_posterior
        factor_logits_of, z_posterior_of = model.factor_logits_of, model.z_posterior_of

    with torch.no_grad():
        enc = ImageModelAdapter(Counting(), SHAPE).encode(x)
        logits = enc.factor_logits()
        loc, scale = enc.z_posterior(classes)
        ref_loc, ref_scale = model.z_posterior(x, classes)
        ref_logits = model.factor_logits(x)
    assert seen == [2]
    assert torch.allclose(loc, ref_loc, atol=1e-5) and torch.allclose(scale, ref_scale, atol=1e-5)
    assert all(torch.allclose(logits[f], ref_logits[f], atol=1e-5) for f in STORY.world.names)
