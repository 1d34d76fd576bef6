"""A stand-in story over the morphomnist world for the model's tests.

The story syntax for continuous factors (issue 24 §2) lands with another part
of the issue; until then these tests build the :class:`~cvaeq.story.Story`
directly (DeepSCM's graph: thickness -> intensity, the digit alone) and let
``story_from_text`` and ``load_story`` find it by its text and name.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvaeq.graph import CausalGraph
from cvaeq.story import Story
from cvaeq.world import get_world

TEXT = "# stand-in morphomnist story of tests/model/morpho_story.py\n"
NAME = "test_morphomnist_standin"


def standin_story(latent_dim: int = 4) -> Story:
    world = get_world("morphomnist")
    edges = [("thickness", "intensity")] + [(f, "X") for f in world.names] + [("Z", "X")]
    return Story(
        name=NAME,
        source="<tests>",
        text=TEXT + f"# latent_dim {latent_dim}\n",
        graph=CausalGraph(edges, nodes=(*world.names, "Z", "X")),
        tables={"digit": np.full(10, 0.1)},
        latent_dim=latent_dim,
        _parents={},
        world=world,
    )


@pytest.fixture
def morpho_story(monkeypatch):
    """``make(latent_dim)``: a stand-in story that ``load_story(NAME)`` and ``story_from_text`` find."""
    import cvaeq.story as story_module

    made: dict[str, Story] = {}
    real_from_text, real_load = story_module.story_from_text, story_module.load_story

    def from_text(text, source="<story>"):
        return made[text] if text in made else real_from_text(text, source)

    def load(source="default"):
        return made[f"{TEXT}# latent_dim {_latent[0]}\n"] if source == NAME else real_load(source)

    _latent = [4]

    def make(latent_dim: int = 4) -> Story:
        story = standin_story(latent_dim)
        made[story.text] = story
        _latent[0] = latent_dim
        return story

    monkeypatch.setattr(story_module, "story_from_text", from_text)
    monkeypatch.setattr(story_module, "load_story", load)
    return make
