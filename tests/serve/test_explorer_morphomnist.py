"""The explorer on the shipped Morpho-MNIST model: continuous factors as bars and numbers, no truth
(but under do(intensity) alone, the digit redrawn)."""

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


def test_under_do_intensity_alone_the_true_counterfactual_is_the_digit_redrawn(explorer):
    import numpy as np

    from cvaeq.data.renderless import no_truth, redrawn_truth
    from cvaeq.worlds.morphomnist import set_intensity, stroke_intensity

    shown = explorer.ask("P(X | do(intensity=250), X=img)", image={"row": 7001}, samples=20, seed=0)
    d = shown.to_dict()
    assert "truth_note" not in d and d["truth"]["exact"] is True and d["truth"]["factors"] == {}
    truth, evidence = shown.pictures["truth"], shown.pictures["evidence"]
    # the evidence's grey levels rescaled as the data's maker set them (its stroke's median level 250,
    # less what the clip at 255 takes from this dim digit's brightest pixels)
    levels = np.round(evidence * 255).astype(np.uint8)
    assert np.array_equal(truth, set_intensity(levels[None], np.array([250.0]))[0] / 255)
    assert 240 <= stroke_intensity(np.round(truth * 255)[None])[0] <= 251
    assert d["truth"]["l1"] == pytest.approx(np.abs(shown.pictures["mean"] - truth).mean(), abs=1e-6)
    # ask() and the CLI say where the truth is; with thickness set too there is none
    world = explorer.world
    from cvaeq.query.answer import ask

    note = ask("P(X | do(intensity=250), X=img)", story="morphomnist", image=levels, samples=10, seed=0).truth_note
    assert note == redrawn_truth(world, "intensity")
    both = ask("P(X | do(intensity=250, thickness=3), X=img)", story="morphomnist", image=levels, samples=10, seed=0)
    assert both.truth_note == no_truth(world)
