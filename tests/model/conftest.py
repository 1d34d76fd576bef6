import numpy as np
import pytest

from cvaeq.worlds.dsprites.render import render
from cvaeq.model.networks import ArchConfig
from cvaeq.story import load_story

#: A model small enough to train in a second.
TINY = {"patch_channels": 4, "merge_channels": 4, "hidden": 16, "dec_channels": 4, "cell_hidden": 8, "dec_hidden": 16}


@pytest.fixture(scope="session")
def story():
    return load_story("default")


@pytest.fixture(scope="session")
def tiny_arch(story):
    return ArchConfig(latent_dim=story.latent_dim, **TINY)


@pytest.fixture(scope="session")
def tiny_data(story):
    classes = story.sample(96, np.random.default_rng(0))
    return render(classes), classes


@pytest.fixture
def toy_plugin(tmp_path):
    """The bars world and the test_mlp family registered by a plugin (unregistered after);
    yields the path of a story file about the bars world."""
    from cvaeq.plugins import get_plugin_manager

    from .toy import STORY, Plugin

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin, name="test-toy-plugin")
    story = tmp_path / "bars.toml"
    story.write_text(STORY)
    try:
        yield story
    finally:
        pm.unregister(plugin)
