import numpy as np
import torch

from cvaeq.engine import infer
from cvaeq.engine import abduct_groups, group_mean, predict_groups
from cvaeq.evaluation.dedup import DedupedImageModel
from cvaeq.evaluation.heldout import draw_heldout, render_float
from cvaeq.scm import build_scm
from cvaeq.story import load_story

STORY = load_story()


def test_one_group_is_exactly_infer(analytic_model):
    classes = draw_heldout(1, 0, STORY)
    scm = build_scm(STORY, image_model=DedupedImageModel(analytic_model(classes)))
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
    scm = build_scm(STORY, image_model=DedupedImageModel(analytic_model(classes)))
    torch.manual_seed(0)
    g = abduct_groups(scm, {"X": render_float(classes, STORY.world)}, 16)
    assert torch.allclose(g.weights.sum(1), torch.ones(3, dtype=torch.float64))
    # decoder = renderer clamped at 0.001: log p(x) = 4096 log 0.999 + log p(factors)
    expected = 4096 * np.log(0.999) + STORY.log_prob(classes)
    assert np.allclose(g.log_marginal().numpy(), expected, atol=0.01)


def test_deduped_factor_logits_run_once_per_run_of_identical_images(analytic_model):
    classes = draw_heldout(2, 2, STORY)
    calls = []
    model = analytic_model(classes)
    inner = model.factor_logits
    model.factor_logits = lambda x: calls.append(len(x)) or inner(x)
    x = render_float(classes, STORY.world).repeat_interleave(5, 0)
    out = DedupedImageModel(model).factor_logits(x)
    assert calls == [2]
    assert torch.equal(out["posX"], inner(x)["posX"])
