import numpy as np
import pytest
import torch

from cvaeq.worlds.dsprites.factors import FACTORS
from cvaeq.worlds.dsprites.render import render
from cvaeq.evaluation.truth import true_counterfactual
from cvaeq.errors import QueryError
from cvaeq.story import load_story

STORY = load_story()
FACTUAL = np.array([[0, 5, 3, 4, 20], [2, 0, 17, 30, 2], [1, 2, 39, 16, 16]])


def test_do_orientation_is_the_factual_render_with_orientation_replaced():
    values = np.array([10, 0, 25])
    t = true_counterfactual(STORY, FACTUAL, "orientation", values, num_particles=16, seed=3)
    expected = FACTUAL.copy()
    expected[:, 2] = values
    assert (t.classes == expected[:, None, :]).all()  # every particle: no descendants move
    assert np.array_equal(t.image, render(expected).astype(bool))


def test_non_descendants_keep_their_factual_values():
    # default story: shape -> scale, posX; scale, posX -> posY; orientation alone
    t = true_counterfactual(STORY, FACTUAL, "scale", np.array([0, 5, 5]), num_particles=64, seed=0)
    for f in ("shape", "orientation", "posX"):
        i = FACTORS.index(f)
        assert (t.classes[:, :, i] == FACTUAL[:, None, i]).all()
    assert (t.classes[:, :, 1] == np.array([0, 5, 5])[:, None]).all()


def test_descendants_of_shape_follow_the_story_and_the_image_is_the_majority_vote():
    t = true_counterfactual(STORY, FACTUAL, "shape", np.array([2, 0, 0]), num_particles=200, seed=0)
    assert (t.classes[:, :, 0] == np.array([2, 0, 0])[:, None]).all()
    # a square of the largest size turned into a heart tends to get smaller (hearts are small)
    assert t.classes[0, :, 1].mean() < 5
    # the image is the pixelwise majority of the rendered particles
    renders = render(t.classes.reshape(-1, 5)).reshape(3, 200, 64, 64)
    assert np.array_equal(t.image, renders.mean(1) > 0.5)


def test_same_seed_same_truth():
    a = true_counterfactual(STORY, FACTUAL, "posX", np.array([0, 1, 2]), num_particles=32, seed=5)
    b = true_counterfactual(STORY, FACTUAL, "posX", np.array([0, 1, 2]), num_particles=32, seed=5)
    assert np.array_equal(a.classes, b.classes)


def test_unknown_factor():
    from cvaeq.errors import QueryError

    with pytest.raises(QueryError, match="unknown factor"):
        true_counterfactual(STORY, FACTUAL, "colour", np.array([0, 0, 0]))


def test_one_story_abduction_serves_every_intervention_as_its_own_would():
    """Evaluation abducts the story's noise once per batch and predicts each
    factor's do() from it: each answer is, to the bit, the one an abduction of
    its own with the same seed gives (all factors observed: prediction draws
    nothing), so sharing changes the cost, not the answer's distribution."""
    from cvaeq.evaluation.truth import counterfactual_of_particles, story_particles

    noise = story_particles(STORY, FACTUAL, num_particles=64, seed=5)
    for factor, values in [("shape", [2, 0, 0]), ("scale", [0, 5, 5]), ("posX", [31, 0, 7])]:
        shared = counterfactual_of_particles(STORY, noise, {factor: np.array(values)})
        own = true_counterfactual(STORY, FACTUAL, factor, np.array(values), num_particles=64, seed=5)
        assert np.array_equal(shared.classes, own.classes)
        assert np.array_equal(shared.mean_image, own.mean_image)


def test_a_block_of_stacked_worlds_is_predicted_alone():
    """The story's round trips of five factors are abducted in one call, stacked,
    and each factor's block of worlds predicted under its own do()."""
    from cvaeq.evaluation.truth import counterfactual_of_particles, story_particles

    stacked = np.concatenate([FACTUAL, FACTUAL[::-1]])
    noise = story_particles(STORY, stacked, num_particles=32, seed=1)
    block = noise.select(3, 6)
    assert block.groups == 3 and torch.equal(block.particles.values["shape"].reshape(3, 32)[:, 0],
                                              torch.as_tensor(FACTUAL[::-1, 0].copy()))
    whole = counterfactual_of_particles(STORY, noise, {"shape": np.array([1, 1, 1, 2, 2, 2])})
    part = counterfactual_of_particles(STORY, block, {"shape": np.array([2, 2, 2])})
    assert np.array_equal(part.classes, whole.classes[3:])
    with pytest.raises(QueryError, match="not among the 6 groups"):
        noise.select(4, 7)
