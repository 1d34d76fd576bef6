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
