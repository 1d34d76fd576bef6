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
from cvaeq.world import World

from .toyworlds import FACTORS, STORY, Oracle, render

WORLD = World("toy_blocks", FACTORS, image_shape=(6, 8), render=render)
STORY_TEXT = STORY.format(world="toy_blocks")


class ToyPlugin:
    @hookimpl
    def register_worlds(self, register):
        register(WORLD)


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
    r = evaluate(LoadedModel(story, None, Oracle(WORLD)), n=6, samples=8, tv_particles=200, truth_particles=16,
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
