"""PNG writing: black-and-white and grey images, grids, atomic files, same bytes."""

import numpy as np
import pytest
from PIL import Image

from cvaeq.errors import DataError
from cvaeq.viz import GAP, GAP_LEVEL, grid, save_grid, save_image, to_pixels


def read(path):
    return np.asarray(Image.open(path))


def test_binary_image_is_black_and_white(tmp_path):
    img = np.zeros((64, 64))
    img[10:20, 30:40] = 1
    path = save_image(img, tmp_path / "a.png")
    np.testing.assert_array_equal(read(path), img.astype(np.uint8) * 255)


def test_mean_image_keeps_its_grey_levels(tmp_path):
    mean = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    got = read(save_image(mean, tmp_path / "mean.png")).astype(float) / 255
    np.testing.assert_allclose(got, mean, atol=0.5 / 255 + 1e-12)


def test_scale_enlarges_by_repeating_pixels(tmp_path):
    img = np.eye(64)
    got = read(save_image(img, tmp_path / "big.png", scale=3))
    assert got.shape == (192, 192)
    np.testing.assert_array_equal(got[::3, ::3], img * 255)


def test_grid_tiles_row_by_row_with_grey_gaps():
    images = np.stack([np.full((4, 4), k / 4) for k in range(5)])
    g = grid(images, columns=3)
    assert g.shape == (2 * 4 + GAP, 3 * 4 + 2 * GAP)
    for k in range(5):
        r, c = divmod(k, 3)
        cell = g[r * (4 + GAP): r * (4 + GAP) + 4, c * (4 + GAP): c * (4 + GAP) + 4]
        assert (cell == round(255 * k / 4)).all()
    assert (g[4:4 + GAP] == GAP_LEVEL).all()  # gap between rows
    assert (g[4 + GAP:, 2 * (4 + GAP):] == GAP_LEVEL).all()  # the empty last cell


def test_grid_of_fewer_images_than_columns_is_one_row(tmp_path):
    path = save_grid(np.ones((2, 64, 64)), tmp_path / "g.png")
    assert read(path).shape == (64, 2 * 64 + GAP)


def test_same_pixels_same_bytes(tmp_path):
    img = np.random.default_rng(0).random((64, 64))
    a = save_image(img, tmp_path / "a.png").read_bytes()
    b = save_image(img, tmp_path / "b.png").read_bytes()
    assert a == b


@pytest.mark.parametrize(
    "image, message",
    [(np.full((64, 64), 1.5), r"\[0, 1\]"), (np.full((64, 64), np.nan), r"\[0, 1\]"), (np.zeros(64), r"\(H, W\) or \(C, H, W\)"), (np.zeros((2, 4, 4)), "C = 1 or 3")],
)
def test_bad_images_are_refused(image, message):
    with pytest.raises(DataError, match=message):
        to_pixels(image)


def test_bad_grids_are_refused():
    with pytest.raises(DataError, match="non-empty"):
        grid(np.zeros((0, 64, 64)))
    with pytest.raises(DataError, match="column"):
        grid(np.zeros((2, 64, 64)), columns=0)


def test_a_failed_write_leaves_no_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="cannot write"):
        save_image(np.zeros((64, 64)), blocker / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_image(np.zeros((64, 64)), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_docstring_examples():
    import doctest

    import cvaeq.viz

    result = doctest.testmod(cvaeq.viz)
    assert result.attempted > 0 and result.failed == 0
