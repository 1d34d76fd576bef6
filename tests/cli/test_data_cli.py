"""`cvaeq data build | show | resample` from the command line."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvaeq.cli import main
from cvaeq.data import grid as grid_module
from cvaeq.worlds.dsprites.factors import classes_array_of
from cvaeq.data.files import load_grid, read_metadata
from cvaeq.worlds.dsprites.render import render
from cvaeq.paths import home

HEART = ["shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5"]


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_show_writes_the_png(tmp_path):
    out = tmp_path / "heart.png"
    result = run("data", "show", *HEART, "--out", str(out))
    assert result.exit_code == 0, result.output
    png = np.asarray(Image.open(out))
    assert png.shape == (64, 64) and set(np.unique(png)) == {0, 255}
    assert png.sum() > 0


@pytest.mark.parametrize(
    "items, message",
    [
        (["shape=hart", *HEART[1:]], "unknown shape 'hart'"),
        ([*HEART[:1], "scale=7", *HEART[2:]], "scale=7 is off the domain"),
        ([*HEART[:4], "posy=0.5"], "unknown factor 'posy'"),
        (HEART[:4], "missing factor(s): posY"),
        ([*HEART[:4], "posY"], "expected name=value"),
    ],
)
def test_show_bad_input_is_one_line_exit_2(tmp_path, items, message):
    out = tmp_path / "x.png"
    result = run("data", "show", *items, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output
    assert not out.exists()


def test_build_small_grid(tmp_path, monkeypatch):
    # The full grid is the benchmark's job; here the first 2,000 images stand in.
    real_build = grid_module.build_grid
    monkeypatch.setattr(grid_module, "build_grid", lambda out=None, workers=None, world=None: real_build(out, n=2000, workers=workers, progress=False, world=world))
    result = run("data", "build")
    assert result.exit_code == 0, result.output
    path = home() / "dsprites_rendered_64x64.npz"
    assert result.output.strip().endswith(str(path))
    grid = load_grid(path)
    np.testing.assert_array_equal(grid.rows(np.arange(0, 2000, 97)), render(classes_array_of(np.arange(0, 2000, 97))))
    out = tmp_path / "elsewhere.npz"
    assert run("data", "build", "--out", str(out), "--workers", "1").exit_code == 0 and out.exists()
    assert run("data", "build", "--workers", "0").exit_code == 2


def test_resample_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for out in (a, b):
        result = run("data", "resample", "--n", "300", "--seed", "5", "--out", str(out))
        assert result.exit_code == 0, result.output
    assert a.read_bytes() == b.read_bytes()
    meta = read_metadata(a)
    assert meta["seed"] == 5 and meta["n"] == 300 and meta["story"] == "default" and "[factors.shape]" in meta["story_text"]
    with np.load(a, allow_pickle=False) as z:
        assert z["imgs"].shape == (300, 64, 64) and z["indices"].dtype == np.int64
        np.testing.assert_array_equal(classes_array_of(z["indices"]), z["latents_classes"][:, 1:])
    c = tmp_path / "c.npz"
    run("data", "resample", "--n", "300", "--seed", "6", "--out", str(c))
    assert c.read_bytes() != a.read_bytes()


def test_resample_default_location_and_story_path(tmp_path):
    from cvaeq.story import load_story

    story = tmp_path / "mine.toml"
    story.write_text(load_story("default").text.replace('name = "default"', 'name = "mine"'))
    result = run("data", "resample", "--story", str(story), "--n", "20", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert (home() / "resampled-mine-n20-s1.npz").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "0", "--seed", "1"], "--n"),
        (["--n", "10", "--seed", "-1"], "--seed"),
        (["--n", "10"], "Missing option '--seed'"),
        (["--n", "10", "--seed", "1", "--story", "nope"], "unknown story 'nope'"),
        (["--n", "10", "--seed", "1", "--npz", "absent.npz"], "cvaeq data build"),
    ],
)
def test_resample_bad_input_is_one_line_exit_2(tmp_path, args, message):
    out = tmp_path / "r.npz"
    result = run("data", "resample", *args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output and result.output.strip().count("\n") == 0
    assert not out.exists()


def test_resample_bad_story_file_names_file_and_node(tmp_path):
    story = tmp_path / "cyclic.toml"
    story.write_text(
        '[factors.shape]\nparents = ["posY"]\nprobs = "uniform"\n'
        '[factors.scale]\nprobs = "uniform"\n[factors.orientation]\nprobs = "uniform"\n'
        '[factors.posX]\nprobs = "uniform"\n[factors.posY]\nparents = ["shape"]\nprobs = "uniform"\n'
    )
    result = run("data", "resample", "--story", str(story), "--n", "10", "--seed", "1")
    assert result.exit_code == 2
    assert str(story) in result.output and "cycle" in result.output
