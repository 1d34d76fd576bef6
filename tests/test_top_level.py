"""The main verbs are importable from the top-level package, which stays light to import."""

import subprocess
import sys

import numpy as np
import pytest

import cvaeq
from cvaeq.errors import DataError, QueryError


def test_ask_and_the_true_counterfactual_are_top_level_names():
    from cvaeq import ask, true_counterfactual_for
    from cvaeq.evaluation.truth import true_counterfactual_for as truth
    from cvaeq.query.answer import ask as engine_ask

    assert ask is engine_ask and true_counterfactual_for is truth
    assert {"ask", "true_counterfactual_for"} <= set(cvaeq.__all__) and "ask" in dir(cvaeq)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cvaeq.nope


def test_importing_cvaeq_imports_neither_torch_nor_pyro():
    code = "import sys, cvaeq; print(sorted(m for m in ('torch', 'pyro') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


FACTUAL = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"


def test_the_true_counterfactual_of_one_world_from_text_or_mappings():
    from cvaeq import true_counterfactual_for
    from cvaeq.evaluation import true_counterfactual
    from cvaeq.story import load_story

    t = true_counterfactual_for("shape=square", FACTUAL, particles=32, seed=3)
    world = t.world
    # the same as the array form that cvaeq eval scores against
    row = world.row(world.parse_factors(FACTUAL.split(",")))
    a = true_counterfactual(load_story("default"), row, "shape", np.array([world.parse_value("shape", "square")]),
                            num_particles=32, seed=3)
    assert np.array_equal(t.classes, a.classes) and np.array_equal(t.image, a.image)
    m = true_counterfactual_for({"shape": "square"}, dict(item.split("=") for item in FACTUAL.split(",")),
                                story="default", particles=32, seed=3)
    assert np.array_equal(m.classes, t.classes)
    # a square where the heart was: the factual position, every particle a square
    assert (t.classes[0, :, world.index("shape")] == world.parse_value("shape", "square")).all()
    assert t.image[0].any() and t.image.shape == (1, *world.image_shape)


@pytest.mark.parametrize("do, factual, match", [
    ("", FACTUAL, "do names no factor"),
    ("colour=red", FACTUAL, "colour"),
    ("shape=square", "shape=heart", "missing factor"),
    (42, FACTUAL, "do must be text"),
    ("shape", FACTUAL, "expected name=value"),
])
def test_a_bad_true_counterfactual_question_is_one_clear_error(do, factual, match):
    from cvaeq import true_counterfactual_for

    with pytest.raises((QueryError, DataError), match=match):
        true_counterfactual_for(do, factual, particles=8)
