"""Grid files and the data loader for 8-bit worlds: uint8 levels stored as they are, read back exactly."""

import json
import zipfile

import numpy as np
import pytest
import torch

from cvaeq.data.dataset import FactorImages, make_loader
from cvaeq.data.files import load_grid, write_images
from cvaeq.data.grid import build_grid
from cvaeq.world import get_world

WORLD = get_world("colour_pendulum")


def test_a_grid_file_of_an_8bit_world_keeps_its_levels(tmp_path):
    path = build_grid(tmp_path / "g.npz", n=40, world=WORLD, progress=False)
    grid = load_grid(path)
    assert grid.world is WORLD and len(grid) == 40
    idx = np.array([39, 0, 17])
    got = grid.images_at(idx)
    assert got.dtype == np.uint8 and got.shape == (3, 3, 64, 64)
    assert np.array_equal(got, WORLD.render_checked(WORLD.classes_array_of(idx)))
    assert got.max() > 1  # levels, not 0/1
    # 12,288 bytes a picture, stored as they are (uncompressed: memory-mapped)
    assert isinstance(grid._imgs, np.memmap) and grid._imgs.nbytes == 40 * 3 * 64 * 64


def test_a_compressed_8bit_file_is_read_whole_not_bit_packed(tmp_path):
    classes = WORLD.classes_array_of(np.arange(5))
    imgs = WORLD.render_checked(classes)
    plain = write_images(tmp_path / "p.npz", imgs, classes, world=WORLD)
    with np.load(plain, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "c.npz", **members)
    grid = load_grid(tmp_path / "c.npz")
    assert np.array_equal(grid.rows(np.arange(5)), imgs)
    with zipfile.ZipFile(tmp_path / "c.npz") as zf:
        assert zf.getinfo("imgs.npy").compress_type == zipfile.ZIP_DEFLATED
    assert json.loads(str(members["metadata_json"][()]))["world"] == "colour_pendulum"


def test_the_loader_gives_channels_and_levels_over_255():
    classes = WORLD.classes_array_of(np.array([3, 1000, 20000]))
    imgs = WORLD.render_checked(classes)
    x, y = FactorImages(imgs, classes, pixel="8bit").__getitems__([0, 1, 2])
    assert x.dtype == torch.float32 and x.shape == (3, 3, 64, 64) and torch.equal(y, torch.from_numpy(classes))
    assert torch.equal(torch.round(x * 255).to(torch.uint8), torch.from_numpy(imgs))  # exactly invertible
    batch = next(iter(make_loader(imgs, classes, batch_size=3, shuffle=False, pixel="8bit")))[0]
    assert torch.equal(batch, x)
    with pytest.raises(Exception, match="pixel must be 'binary' or '8bit'"):
        FactorImages(imgs, classes, pixel="16bit")


def test_data_show_writes_the_colour_picture_as_rgb(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from cvaeq.cli import main

    out = tmp_path / "p.png"
    result = CliRunner().invoke(main, ["data", "show", "--world", "colour_pendulum", "angle=0", "light=10",
                                       "shadow_length=3", "shadow_position=10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (64, 64)
        pixels = np.asarray(im).transpose(2, 0, 1)
    classes = WORLD.row(WORLD.parse_factors(["angle=0", "light=10", "shadow_length=3", "shadow_position=10"]))
    assert np.array_equal(pixels, WORLD.render_checked(classes)[0])
