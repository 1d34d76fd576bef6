"""Building the grid file and showing one image."""

import numpy as np
import pytest
from PIL import Image

from cvaeq.data import grid as grid_module
from cvaeq.worlds.dsprites.factors import N_IMAGES, classes_array_of, parse_factors
from cvaeq.data.files import load_grid
from cvaeq.data.grid import build_grid, image_of, show_image
from cvaeq.worlds.dsprites.render import render
from cvaeq.errors import DataError
from cvaeq.paths import GRID_FILENAME, home


def test_build_writes_the_real_layout_in_grid_order(tmp_path):
    path = build_grid(tmp_path / "g.npz", n=1000, chunk=300, workers=1, progress=False)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"imgs", "latents_classes", "latents_values", "metadata_json"}
        assert z["imgs"].dtype == np.uint8 and z["imgs"].shape == (1000, 64, 64)
        lc, lv = z["latents_classes"], z["latents_values"]
        imgs = z["imgs"]
    np.testing.assert_array_equal(lc[:, 1:], classes_array_of(np.arange(1000)))
    assert (lc[:, 0] == 0).all() and (lv[:, 0] == 1).all()
    # posY varies fastest, as in the real file
    assert lc[1, 5] == 1 and lv[31, 5] == 1.0 and lc[32, 4] == 1
    np.testing.assert_array_equal(imgs, render(classes_array_of(np.arange(1000))))
    grid = load_grid(path)
    assert grid.metadata["images"] == 1000
    np.testing.assert_array_equal(grid.images_at(np.array([999, 0])), imgs[[999, 0]])


def test_build_defaults_to_the_cache_and_is_reproducible(tmp_path):
    a = build_grid(n=64, progress=False)
    assert a == home() / GRID_FILENAME
    b = build_grid(tmp_path / "b.npz", n=64, chunk=10, workers=1, progress=False)
    assert a.read_bytes() == b.read_bytes()


def test_parallel_build_writes_the_same_file(tmp_path):
    a = build_grid(tmp_path / "a.npz", n=600, chunk=100, workers=1, progress=False)
    b = build_grid(tmp_path / "b.npz", n=600, chunk=100, workers=2, progress=False)
    assert a.read_bytes() == b.read_bytes()


def test_interrupted_build_leaves_no_file(tmp_path, monkeypatch):
    calls = []

    def failing_render(classes):
        calls.append(len(classes))
        if len(calls) > 1:
            raise KeyboardInterrupt
        return render(classes)

    from dataclasses import replace

    from cvaeq.world import get_world

    failing = replace(get_world("dsprites"), render=failing_render)
    out = tmp_path / "g.npz"
    with pytest.raises(KeyboardInterrupt):
        build_grid(out, n=100, chunk=40, workers=1, progress=False, world=failing)
    assert list(tmp_path.iterdir()) == []


def test_show_writes_a_64x64_black_and_white_png(tmp_path):
    items = ["shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5"]
    out = show_image(items, tmp_path / "heart.png")
    png = np.asarray(Image.open(out))
    assert png.shape == (64, 64) and png.dtype == np.uint8
    assert set(np.unique(png)) == {0, 255}
    cls = parse_factors(items)
    np.testing.assert_array_equal(png // 255, render(np.array([[cls[f] for f in cls]]))[0])
    np.testing.assert_array_equal(image_of(cls), png // 255)


def test_show_snaps_values_and_rejects_bad_ones(tmp_path):
    near = image_of(["shape=square", "scale=0.98", "orientation=0.01", "posX=0.49", "posY=0.02"])
    exact = image_of({"shape": 0, "scale": 5, "orientation": 0, "posX": 15, "posY": 1})
    np.testing.assert_array_equal(near, exact)
    with pytest.raises(DataError, match="off the domain"):
        show_image(["shape=heart", "scale=2", "orientation=0", "posX=0.5", "posY=0.5"], tmp_path / "x.png")
    with pytest.raises(DataError, match="unknown factor 'size'"):
        show_image(["shape=heart", "size=1", "orientation=0", "posX=0.5", "posY=0.5"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_full_grid_builds_and_memory_maps(tmp_path):
    path = build_grid(tmp_path / "full.npz", progress=False)
    grid = load_grid(path)
    assert len(grid) == N_IMAGES and grid.complete
    rng = np.random.default_rng(0)
    idx = rng.choice(N_IMAGES, size=200, replace=False)
    np.testing.assert_array_equal(grid.images_at(idx), render(classes_array_of(idx)))
