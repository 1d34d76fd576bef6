"""Fixtures of the explorer's tests: the pong plugin's world, and a tiny untrained
image model of it (its answers are poor, but every path of the page runs on a
world that is not dSprites); and an explorer of a world without a renderer."""

import numpy as np
import pytest
import torch

#: Networks small enough to build in a moment (those of the pong plugin's own tests).
SMALL = {"patch_channels": 8, "merge_channels": 16, "hidden": 64, "dec_channels": 16,
         "cell_hidden": 32, "dec_hidden": 128, "dec_layers": 1}


@pytest.fixture
def pong():
    """The pong plugin registered as an installed one would be (installed plugins are not loaded in tests)."""
    cvaeq_pong = pytest.importorskip("cvaeq_pong", reason="pip install -e plugins/cvaeq-pong")
    from cvaeq.plugins import get_plugin_manager

    pm = get_plugin_manager()
    ours = not pm.is_registered(cvaeq_pong)
    if ours:
        pm.register(cvaeq_pong, name="cvaeq-pong")
    yield cvaeq_pong
    if ours:
        pm.unregister(cvaeq_pong)


@pytest.fixture
def pong_checkpoint(pong, tmp_path):
    """A checkpoint of an untrained causal VAE on the story ``pong``."""
    from cvaeq.model.checkpoint import save_checkpoint
    from cvaeq.model.family import get_family
    from cvaeq.story import load_story

    story = load_story("pong")
    torch.manual_seed(0)
    model = get_family("causal_vae").build(story.world, story.latent_dim, SMALL)
    tables = {f: np.log(story.table(f)) for f in story.factors}
    return save_checkpoint(tmp_path / "pong.safetensors", model, story, tables, train_config={"n": 0}, epoch=0)


@pytest.fixture
def files_explorer(tmp_path):
    """An explorer of ``swatch_files`` (tests/eightbit.py): the 8-bit swatch world without its renderer,
    its nine pictures PNG files with a factors.csv (rows 6-8 held out), and its hand-written model."""
    from cvaeq.plugins import get_plugin_manager
    from cvaeq.serve.explorer import Explorer
    from cvaeq.story import story_from_text

    from ..eightbit import FILES_STORY, FilesPlugin, SwatchModel, files_world

    plugin = FilesPlugin(files_world(tmp_path))
    get_plugin_manager().register(plugin, name="swatch-files-world")
    try:
        yield Explorer(model=SwatchModel(), story=story_from_text(FILES_STORY))
    finally:
        get_plugin_manager().unregister(plugin)
