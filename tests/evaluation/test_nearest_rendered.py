"""The renderer's reading of a counterfactual picture (``effectiveness_rendered``): the class whose
rendered picture is nearest, the picture's other factors held. Exact integers, no classifier."""

import numpy as np
import pytest

from cvaeq.errors import DataError
from cvaeq.evaluation.metrics import factor_correct
from cvaeq.evaluation.truth import nearest_rendered
from cvaeq.world import get_world

COLOUR = get_world("colour_pendulum")


@pytest.mark.parametrize("factor", COLOUR.names)
def test_every_true_picture_reads_as_its_own_class(factor):
    rng = np.random.default_rng(3)
    size = COLOUR.sizes[factor]
    base = np.stack([rng.integers(0, s, size) for s in COLOUR.sizes.values()], 1)
    base[:, COLOUR.index(factor)] = np.arange(size)
    pictures = COLOUR.render_checked(base)
    held = base.copy()
    held[:, COLOUR.index(factor)] = rng.integers(0, size, size)  # the factor's own column is not read
    assert nearest_rendered(COLOUR, pictures, held, factor).tolist() == list(range(size))


def test_a_shadow_drawn_a_few_pixels_long_reads_as_the_nearer_length():
    world = COLOUR
    classes = np.array([[10, 10, 3, 4]])
    picture = world.render_checked(classes)
    longer = world.render_checked(np.array([[10, 10, 4, 4]]))
    # the true picture with the longer shadow's pixels pasted over it, one column at a time from its edge:
    # once more than half the difference is pasted, the reading moves to the longer shadow
    differ = np.flatnonzero((picture != longer).any(axis=(0, 1, 2)))
    reads = []
    for k in range(1, len(differ) + 1):
        p = picture.copy()
        cols = differ[:k]
        p[..., cols] = longer[..., cols]
        reads.append(int(nearest_rendered(world, p, classes, "shadow_length")[0]))
    assert reads[0] == 3 and reads[-1] == 4 and reads == sorted(reads)


def test_look_alike_classes_tie_to_the_lower_and_count_as_right_modulo_the_shape():
    world = get_world("dsprites")
    # a square turned by a quarter turn draws the same picture: its orientation classes 0 and 10 tie
    square = np.array([[0, 3, 10, 16, 16]])
    got = nearest_rendered(world, world.render_checked(square), square, "orientation")
    assert got.tolist() == [0]
    assert factor_correct(world, "orientation", got, np.array([10]), np.array([0])).tolist() == [True]


def test_bad_pictures_and_worlds_without_a_renderer_are_refused():
    with pytest.raises(ValueError, match="uint8 pictures"):
        nearest_rendered(COLOUR, np.zeros((1, 3, 64, 64), np.float32), np.zeros((1, 4), np.int64), "angle")
    with pytest.raises(ValueError, match="a row of factors each"):
        nearest_rendered(COLOUR, np.zeros((2, 3, 64, 64), np.uint8), np.zeros((1, 4), np.int64), "angle")
    with pytest.raises(DataError):
        world = get_world("morphomnist")
        nearest_rendered(world, np.zeros((1, *world.image_shape), np.uint8), np.zeros((1, 3)), "digit")


def test_many_pictures_are_read_in_bounded_chunks_with_the_same_answers(monkeypatch):
    import cvaeq.evaluation.truth as truth

    rng = np.random.default_rng(4)
    classes = np.stack([rng.integers(0, s, 40) for s in COLOUR.sizes.values()], 1)
    pictures = COLOUR.render_checked(classes)
    whole = nearest_rendered(COLOUR, pictures, classes, "light")
    monkeypatch.setattr(truth, "_READ_CHUNK", 25)  # one key's 21 lights a chunk; rows read 25 at a time
    many = np.repeat(pictures, 2, 0)  # two rows a key
    assert whole.tolist() == classes[:, 1].tolist()
    assert nearest_rendered(COLOUR, many, np.repeat(classes, 2, 0), "light").tolist() == np.repeat(whole, 2).tolist()
    same = np.repeat(pictures[:1], 60, 0)  # one key, 60 rows: three reads
    assert set(nearest_rendered(COLOUR, same, np.repeat(classes[:1], 60, 0), "light").tolist()) == {classes[0, 1]}
