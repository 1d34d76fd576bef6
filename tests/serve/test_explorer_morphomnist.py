"""The explorer on the shipped Morpho-MNIST model: continuous factors as bars and numbers, no truth."""

import pytest

from cvaeq.loading import shipped_checkpoint
from cvaeq.serve.explorer import Explorer
from cvaeq.story import load_story

pytestmark = pytest.mark.skipif(shipped_checkpoint(load_story("morphomnist")) is None, reason="no shipped model")


@pytest.fixture(scope="module")
def explorer():
    return Explorer(story="morphomnist")


def test_an_image_question_shows_each_continuous_factor_as_a_histogram_and_says_there_is_no_truth(explorer):
    d = explorer.ask("P(X | do(thickness=4), X=img)", image={"row": 7001}, samples=20, seed=0).to_dict()
    assert "no renderer" in d["truth_note"] and "truth" not in d
    assert set(d["factors"]) == {"digit", "thickness", "intensity"}
    assert sum(d["factors"]["intensity"].values()) == pytest.approx(1.0)
    lo, hi = (float(v) for v in next(iter(d["factors"]["thickness"])).split("-"))
    assert lo == hi == 4.0  # every particle's thickness is the one set
    assert "quantiles" not in d and "histogram" not in d  # the extras are the bars', not the answer's


def test_a_continuous_target_answers_with_quantiles_and_its_histogram(explorer):
    d = explorer.ask("P(intensity | do(thickness=4))", samples=2000, seed=0).to_dict()
    q = d["quantiles"]["intensity"]
    assert q["5%"] < q["50%"] < q["95%"] <= 255 and 230 < d["expectation"]["intensity"] < 255
    assert len(d["histogram"]["intensity"]["probabilities"]) == 20
