import numpy as np
import pytest

from cvaeq.worlds.dsprites.factors import VALUES
from cvaeq.worlds.dsprites.render import render
from cvaeq.evaluation.metrics import (THRESHOLD, binarise, factor_correct, given_factor, iou, l1, soft_iou,
                                     total_variation)
from cvaeq.world import Factor, World, get_world

WORLD = get_world("dsprites")


def orientation_correct(shape, predicted, true):
    return factor_correct(WORLD, "orientation", predicted, true, given=shape)

SQUARE, ELLIPSE, HEART = 0, 1, 2
STEP = VALUES["orientation"][1] - VALUES["orientation"][0]


def test_iou_of_overlapping_and_empty_images():
    a = np.zeros((3, 8, 8), bool)
    b = np.zeros((3, 8, 8), bool)
    a[0, :4], b[0, 2:6] = True, True     # 16 shared of 48
    a[1, :2] = True                       # disjoint from an empty image
    assert iou(a, b).tolist() == pytest.approx([16 / 48, 0.0, 1.0])


def test_a_pixel_on_in_exactly_half_the_worlds_is_off():
    """docs/evaluation.md: mean images are thresholded as ``mean > 0.5``; with an
    even number of particles a pixel on in exactly half of them is a tie, and off."""
    assert THRESHOLD == 0.5
    mean = np.array([[[0.5, np.nextafter(0.5, 1), np.nextafter(0.5, 0), 0.0, 1.0]]])
    assert binarise(mean).tolist() == [[[False, True, False, False, True]]]


def test_soft_iou_equals_iou_on_binary_images_and_scores_blur():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5, 8, 8)) > 0.5
    assert soft_iou(a, b) == pytest.approx(iou(a, b))
    sharp = a.astype(float)
    assert soft_iou(sharp, 0.5 * sharp).tolist() == pytest.approx([0.5] * 5)


def test_l1_is_the_mean_absolute_pixel_difference():
    a = np.zeros((2, 4, 4))
    b = np.zeros((2, 4, 4))
    b[0, 0, :2] = 1.0          # 2 of 16 pixels flipped
    b[1] = 0.25                 # every pixel off by a quarter
    assert l1(a, b).tolist() == pytest.approx([2 / 16, 0.25])
    assert l1(b, b).tolist() == [0.0, 0.0]
    assert l1(np.zeros((1, 3, 3)), np.ones((1, 3, 3))).tolist() == [1.0]


def test_total_variation():
    assert total_variation({0: 0.2, 1: 0.8}, {0: 0.2, 1: 0.8}) == 0.0
    assert total_variation({0: 1.0}, {1: 1.0}) == 1.0
    assert total_variation({0: 0.5, 1: 0.5}, {0: 0.7, 1: 0.3}) == pytest.approx(0.2)


def test_orientation_zero_and_two_pi_are_the_same_for_every_shape():
    for s in (SQUARE, ELLIPSE, HEART):
        assert orientation_correct(np.array([s]), np.array([39]), np.array([0]))[0]
        assert orientation_correct(np.array([s]), np.array([0]), np.array([39]))[0]


@pytest.mark.parametrize("shape,period", [(SQUARE, np.pi / 2), (ELLIPSE, np.pi), (HEART, 2 * np.pi)])
def test_orientation_counts_modulo_the_shapes_period(shape, period):
    theta = VALUES["orientation"]
    for true in (0, 7, 23):
        for pred in range(40):
            d = abs((theta[pred] - theta[true] + period / 2) % period - period / 2)
            expected = d <= STEP / 2 + 1e-9
            got = orientation_correct(np.array([shape]), np.array([pred]), np.array([true]))[0]
            assert got == expected, (shape, true, pred, d / STEP)


def test_a_turned_heart_is_wrong_but_a_square_turned_by_90_degrees_is_right():
    # 10 grid steps = 92.3 degrees: a quarter turn for the square, not for the heart or ellipse
    assert orientation_correct(np.array([SQUARE]), np.array([10]), np.array([0]))[0]
    assert not orientation_correct(np.array([HEART]), np.array([10]), np.array([0]))[0]
    assert not orientation_correct(np.array([ELLIPSE]), np.array([10]), np.array([0]))[0]
    # the ellipse's half turn lies half-way between classes 19 and 20: both count
    assert orientation_correct(np.array([ELLIPSE, ELLIPSE]), np.array([19, 20]), np.array([0, 0])).all()
    assert not orientation_correct(np.array([HEART, HEART]), np.array([19, 20]), np.array([0, 0])).any()


def test_equivalent_orientations_render_nearly_the_same_image():
    # what the symmetry table claims, checked on the renderer: a square at class 0 vs 10
    a, b, c = render(np.array([[SQUARE, 5, 0, 16, 16], [SQUARE, 5, 10, 16, 16], [SQUARE, 5, 5, 16, 16]]))
    assert iou(a[None], b[None])[0] > iou(a[None], c[None])[0]


def test_factor_correct_needs_the_shape_for_orientation():
    assert given_factor(WORLD, "orientation") == "shape" and given_factor(WORLD, "posX") is None
    assert factor_correct(WORLD, "posX", [3, 4], [3, 5]).tolist() == [True, False]
    with pytest.raises(ValueError, match="shape"):
        factor_correct(WORLD, "orientation", [0], [0])
    with pytest.raises(ValueError, match="unknown factor"):
        factor_correct(WORLD, "colour", [0], [0])


def test_factor_correct_reads_any_worlds_equivalence_table():
    # a toy world: a "flip" of 2 classes that looks the same when "kind" is round (class 1)
    table = np.array([np.eye(2, dtype=bool), np.ones((2, 2), bool)])
    toy = World("toy", (Factor("kind", labels=("square", "round")), Factor("flip", labels=("up", "down"))),
                image_shape=(2, 2), render=lambda c: np.zeros((len(c), 2, 2), np.uint8),
                equivalent={"flip": ("kind", table)})
    assert factor_correct(toy, "flip", [1, 1, 0], [0, 0, 0], given=[0, 1, 0]).tolist() == [False, True, True]
    assert factor_correct(toy, "kind", [1], [0]).tolist() == [False]
