"""The pendulum world through the commands a user runs: data, queries and training."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvaeq.cli import main
from cvaeq.data.files import load_grid
from cvaeq.story import load_story
from cvaeq.world import get_world

WORLD = get_world("pendulum")
STORY = load_story("pendulum")
STRAIGHT = ["angle=0", "light=9.37", "shadow_length=3", "shadow_position=10.8"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_show_draws_the_renderers_picture(tmp_path):
    result = run("data", "show", "--world", "pendulum", *STRAIGHT, "--out", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    png = np.asarray(Image.open(tmp_path / "p.png")) > 0
    truth = WORLD.render_checked(WORLD.row(WORLD.parse_factors(STRAIGHT)))[0]
    assert np.array_equal(png, truth.astype(bool))


def test_show_names_the_worlds_factors_on_a_typo(tmp_path):
    result = run("data", "show", "--world", "pendulum", "angel=0", *STRAIGHT[1:], "--out", tmp_path / "p.png")
    assert result.exit_code == 2 and "unknown factor 'angel'" in result.output
    assert "angle, light, shadow_length, shadow_position" in result.output


def test_resampled_data_follow_the_projection(tmp_path):
    out = tmp_path / "r.npz"
    result = run("data", "resample", "--story", "pendulum", "--n", 400, "--seed", 3, "--out", out)
    assert result.exit_code == 0, result.output
    grid = load_grid(out, world=WORLD)
    classes = WORLD.classes_array_of(grid.indices)
    law = STORY.table("shadow_position")[classes[:, 0], classes[:, 1]].argmax(1)
    assert (classes[:, 3] == law).mean() > 0.85  # the story's noise moves few shadows off the projection
    images = grid.images_at(grid.indices)
    assert np.array_equal(images, WORLD.render_checked(classes))


def test_factor_queries_answer_from_the_storys_tables():
    result = run("query", "E[shadow_position | do(light=2)]", "--story", "pendulum", "--samples", 20000,
                 "--seed", 0, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)["expectation"]["shadow_position"]
    light = WORLD.snap("light", 2.0)
    exact = (STORY.table("angle")[:, None] * STORY.table("shadow_position")[:, light]).sum(0) @ WORLD.values[
        "shadow_position"]
    assert got == pytest.approx(exact, abs=0.1)
    assert exact > 14  # a light far left throws the shadow far right


def test_training_a_tiny_model_on_the_pendulum(tmp_path):
    from cvaeq.model.checkpoint import load_checkpoint

    out = tmp_path / "m.safetensors"
    result = run("train", "--story", "pendulum", "--n", 256, "--epochs", 1, "--batch", 64, "--eval-n", 32,
                 "--arch", "patch_channels=4,merge_channels=4,hidden=16,dec_channels=4,cell_hidden=8,dec_hidden=16",
                 "--quiet", "--out", out)
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(out)
    assert ckpt.story.world.name == "pendulum" and ckpt.meta["arch"]["window"] == 0
    assert set(ckpt.factor_logits) == set(WORLD.names)
