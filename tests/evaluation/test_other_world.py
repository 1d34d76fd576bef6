"""Evaluation is generic over the world: a toy world of 24 images, scored end to end."""

import numpy as np
import pytest
import torch

from cvaeq import hookimpl
from cvaeq.cli.eval import summary
from cvaeq.evaluation import draw_heldout, evaluate
from cvaeq.loading import LoadedModel
from cvaeq.plugins import get_plugin_manager
from cvaeq.story import story_from_text
from cvaeq.world import Factor, World

STORY_TEXT = """
world = "toy_blocks"
name = "toy"
latent_dim = 1
[factors.kind]
parents = []
probs = [0.6, 0.4]
[factors.x]
parents = ["kind"]
[factors.x.probs]
bar = [0.4, 0.3, 0.2, 0.1]
dot = [0.1, 0.2, 0.3, 0.4]
[factors.y]
parents = []
probs = "uniform"
"""


def render(classes):
    """A 2x2 block (kind=bar) or one pixel (kind=dot) at (2y, 2x) of a 6x8 image."""
    out = np.zeros((len(classes), 6, 8), np.uint8)
    for i, (kind, x, y) in enumerate(np.asarray(classes)):
        out[i, 2 * y: 2 * y + (2 if kind == 0 else 1), 2 * x: 2 * x + (2 if kind == 0 else 1)] = 1
    return out


WORLD = World("toy_blocks", (Factor("kind", labels=("bar", "dot")), Factor("x", values=[0, 1 / 3, 2 / 3, 1]),
                             Factor("y", values=[0.0, 0.5, 1.0])), image_shape=(6, 8), render=render)


class ToyPlugin:
    @hookimpl
    def register_worlds(self, register):
        register(WORLD)


class Oracle:
    """Decoder = the renderer (clamped); q(factors | X) = the nearest of the 24 renders."""

    latent_dim = 1

    def __init__(self, ignore=None):
        self.ignore = ignore
        self.classes = WORLD.classes_array_of(np.arange(WORLD.n_images))
        self.images = torch.from_numpy(render(self.classes)).float().reshape(WORLD.n_images, -1)

    def decode_probs(self, classes, z):
        classes = classes.numpy().copy()
        if self.ignore is not None:
            classes[:, WORLD.index(self.ignore)] = 0
        return torch.from_numpy(render(classes)).float().clamp(0.001, 0.999)

    def factor_logits(self, x):
        flat = x.reshape(len(x), -1).float()
        best = self.classes[torch.cdist(flat, self.images).argmin(1).numpy()]
        out = {}
        for i, f in enumerate(WORLD.names):
            logits = torch.full((len(x), WORLD.sizes[f]), -12.0)
            logits[torch.arange(len(x)), torch.from_numpy(best[:, i])] = 0.0
            out[f] = logits
        return out

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


@pytest.fixture(scope="module")
def story():
    pm = get_plugin_manager()
    plugin = ToyPlugin()
    pm.register(plugin, name="toy-blocks-test")
    try:
        yield story_from_text(STORY_TEXT)
    finally:
        pm.unregister(plugin)


def test_a_toy_world_is_evaluated_with_its_own_factors(story):
    assert draw_heldout(5, 0, story).shape == (5, 3)
    r = evaluate(LoadedModel(story, None, Oracle()), n=6, samples=8, tv_particles=200, truth_particles=16,
                 progress=False)
    assert list(r["factor_accuracy"]) == ["kind", "x", "y"]
    assert r["factor_accuracy"] == {"kind": 1.0, "x": 1.0, "y": 1.0} and r["recon_iou"] == 1.0
    cf = r["counterfactual"]
    assert cf["effectiveness"] == {"kind": 1.0, "x": 1.0, "y": 1.0}
    assert cf["iou"]["y"] == 1.0  # y has no descendants: the counterfactual is exact
    assert cf["composition"] == {"1": 1.0, "10": 1.0}
    assert r["tv"]["interventional"] == pytest.approx(0.0, abs=1e-12)
    table = summary(r)
    assert "kind" in table and "posX" not in table
