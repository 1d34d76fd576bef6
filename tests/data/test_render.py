"""The renderer draws what the real dSprites dataset holds.

Fast checks run on a subset of the real frames (a neighbourhood search around
each frame's position); the full-grid comparison over all 320 frames is slow.
The frames are DeepMind's dSprites animation, copied into tests/data/reference/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cvaeq.worlds.dsprites.factors import SIZES, classes_array_of, indices_of
from cvaeq.worlds.dsprites.reference import best_matches_full, best_matches_near, load_frames, reference_path
from cvaeq.worlds.dsprites.render import render
from cvaeq.errors import DataError

GIF = Path(__file__).resolve().parent / "reference" / "dsprites.gif"  # the real frames, copied into the repository


def test_the_library_finds_the_reference_frames():
    assert reference_path().is_file()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return load_frames(GIF)


def test_subset_of_real_frames_matches(frames):
    subset = frames[::12]  # 27 frames: hearts, ellipses and squares
    score, _ = best_matches_near(subset, radius=1)
    exact = int((score == 1.0).sum())
    print(f"subset: mean IoU {score.mean():.4f}, min {score.min():.4f}, exact {exact}/{len(subset)}")
    assert score.mean() >= 0.95
    assert exact == len(subset)


@pytest.mark.parametrize(
    "frame, classes",
    [
        (273, [0, 5, 0, 0, 0]),  # square, scale 1, at position (0, 0)
        (290, [0, 5, 16, 0, 0]),  # square turned 16 steps
        (5, [2, 5, 0, 0, 0]),  # heart upright
        (19, [2, 5, 1, 0, 0]),  # heart one step counter-clockwise
        (91, [2, 5, 0, 1, 31]),  # heart at the bottom, one step right
        (192, [1, 0, 0, 0, 0]),  # smallest ellipse
        (215, [1, 5, 5, 0, 0]),  # ellipse turned 5 steps
    ],
)
def test_known_frames_are_drawn_pixel_exact(frames, frame, classes):
    assert np.array_equal(render(np.array([classes]))[0], frames[frame])


@pytest.mark.slow
def test_all_real_frames_match_full_grid(frames):
    score, _ = best_matches_full(frames)
    exact = int((score == 1.0).sum())
    print(f"full grid: mean IoU {score.mean():.4f}, min {score.min():.4f}, exact {exact}/320")
    assert score.mean() >= 0.95


def test_output_is_binary_uint8_of_the_right_shape():
    classes = classes_array_of(np.arange(0, 737280, 9973))
    imgs = render(classes)
    assert imgs.shape == (len(classes), 64, 64)
    assert imgs.dtype == np.uint8
    assert set(np.unique(imgs)) <= {0, 1}
    assert (imgs.sum(axis=(1, 2)) > 0).all()


def test_orientation_zero_and_two_pi_are_the_same_image():
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, SIZES[f], 64) for f in SIZES], axis=1)
    last = classes.copy()
    classes[:, 2] = 0
    last[:, 2] = SIZES["orientation"] - 1
    assert np.array_equal(render(classes), render(last))


def test_square_has_quarter_turn_symmetry():
    # At position (0, 0) the centre is pixel corner (16, 16), the centre of the
    # 32x32 top-left block; turning that block a quarter turn leaves every
    # square (any scale, any orientation) unchanged.
    classes = np.array([[0, s, o, 0, 0] for s in range(6) for o in range(40)])
    block = render(classes)[:, :32, :32]
    assert np.array_equal(block, np.rot90(block, axes=(1, 2)))


def test_ellipse_has_half_turn_symmetry_about_its_centre():
    # Centre of classes (15, 15) and (16, 16) straddle pixel 32; (posX 0..31) mirror pairs
    # k and 31 - k put the centre at mirrored places, so a half turn maps one to the other.
    a = render(np.array([[1, 3, 7, 4, 9]]))[0]
    b = render(np.array([[1, 3, 7, 27, 22]]))[0]
    assert np.array_equal(a, b[::-1, ::-1])


def test_position_moves_right_and_down():
    base = render(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 31, 0], [0, 0, 0, 0, 31]]))
    cols = [np.nonzero(img)[1].mean() for img in base]
    rows = [np.nonzero(img)[0].mean() for img in base]
    assert cols[1] > cols[0] + 30 and abs(rows[1] - rows[0]) < 1e-9  # posX: columns
    assert rows[2] > rows[0] + 30 and abs(cols[2] - cols[0]) < 1e-9  # posY: rows


def test_rendering_does_not_depend_on_the_chunk():
    classes = classes_array_of(np.arange(500_000, 500_300))
    whole = render(classes)
    parts = np.concatenate([render(classes[i : i + 37]) for i in range(0, 300, 37)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(render(classes[indices_of(classes) % 2 == 0]), whole[::2])


@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.zeros(5), np.zeros((2, 5, 1))])
def test_bad_input_shape_raises_data_error(bad):
    with pytest.raises(DataError, match=r"shape \(N, 5\)"):
        render(bad)


def test_out_of_range_class_raises_data_error():
    with pytest.raises(DataError, match="out of range"):
        render(np.array([[3, 0, 0, 0, 0]]))
