"""Evaluation's truth says plainly that a world without a renderer has none."""

import numpy as np
import pytest

from cvaeq.errors import DataError
from cvaeq.evaluation.truth import render_unique
from cvaeq.world import get_world


def test_rendering_the_truth_of_a_renderer_less_world_says_there_is_none():
    with pytest.raises(DataError, match="^no true counterfactual: world 'morphomnist' has no renderer: its pictures"):
        render_unique(get_world("morphomnist"), np.array([[1, 2.0, 3.0]]))


def test_a_world_with_a_renderer_still_renders_its_truth():
    world = get_world("dsprites")
    classes = np.array([[2, 5, 0, 15, 15], [2, 5, 0, 15, 15], [0, 0, 0, 0, 0]])
    images = render_unique(world, classes)
    assert np.array_equal(images, world.render(classes))


def test_evaluating_a_model_of_a_renderer_less_world_gives_the_truth_free_figures_and_says_why(tmp_path):
    from cvaeq.evaluation import evaluate
    from cvaeq.loading import load_model
    from cvaeq.plugins import get_plugin_manager
    from cvaeq.story import story_from_text

    from ..eightbit import FILES_STORY, FilesPlugin, SwatchModel, files_world

    plugin = FilesPlugin(files_world(tmp_path))
    get_plugin_manager().register(plugin, name="swatch-files-world")
    try:
        loaded = load_model(SwatchModel(), story_from_text(FILES_STORY), image=True)
        with pytest.raises(DataError, match="holds out 3 labelled pictures; ask for at most that"):
            evaluate(loaded, n=4, samples=4, progress=False)
        report = evaluate(loaded, n=3, samples=4, progress=False)
        assert "renderer" in report["truth"] and "accuracy" not in report
    finally:
        get_plugin_manager().unregister(plugin)
