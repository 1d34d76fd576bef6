"""The shipped pendulum model answers the pendulum's questions against the rendered truth,
and is what a query about the pendulum's pictures gets by default."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.errors import QueryError
from cvaeq.evaluation.metrics import iou
from cvaeq.evaluation.truth import true_counterfactual
from cvaeq.loading import WEIGHTS, shipped_checkpoint
from cvaeq.query.answer import ask
from cvaeq.story import load_story, story_from_text

STORY = load_story("pendulum")
WORLD = STORY.world
FACTUAL = "angle=-18,light=13.25,shadow_length=3,shadow_position=6.4"
ROW = WORLD.row(WORLD.parse_factors(FACTUAL.split(",")))
EVIDENCE = WORLD.render_checked(ROW)[0]


def truth_of(factor, value):
    return true_counterfactual(STORY, ROW, factor, np.array([WORLD.snap(factor, value)]), num_particles=256, seed=0)


def test_the_pendulum_story_gets_its_shipped_model():
    assert shipped_checkpoint(STORY) == WEIGHTS / "pendulum.safetensors"
    assert (WEIGHTS / "pendulum.safetensors").stat().st_size <= 20 * 1024**2
    assert shipped_checkpoint(load_story("default")) == WEIGHTS / "default.safetensors"


def test_moving_the_light_left_moves_the_shadow_right_as_the_truth_does():
    a = ask("P(X | do(light=2), X=img)", story="pendulum", image=FACTUAL, samples=100, seed=0)
    assert a.model.endswith("pendulum.safetensors") and a.rung == "counterfactual"
    truth = truth_of("light", 2.0)
    score = float(iou(a.mean_image[None] > 0.5, truth.image)[0])
    assert score > 0.85 and float(iou(EVIDENCE[None], truth.image)[0]) < 0.6
    assert float(a.predicted["light"]) < 3
    e = ask("E[shadow_position | do(light=2), X=img]", story="pendulum", image=FACTUAL, samples=100, seed=0)
    true_e = WORLD.values["shadow_position"][truth.classes[0, :, WORLD.index("shadow_position")]].mean()
    assert e.expectation["shadow_position"] == pytest.approx(true_e, abs=0.8) and true_e > 12


def test_dragging_the_shadow_moves_nothing_else():
    a = ask("P(X | do(shadow_position=17.4), X=img)", story="pendulum", image=FACTUAL, samples=100, seed=1)
    truth = truth_of("shadow_position", 17.4)
    assert float(iou(a.mean_image[None] > 0.5, truth.image)[0]) > 0.85
    assert a.predicted["angle"] == "-18" and a.predicted["light"] == WORLD.label("light", WORLD.snap("light", 13.25))


def test_the_encoder_reads_the_factors_of_pictures_from_the_story():
    rows = STORY.sample(12, np.random.default_rng(5))
    for row in rows:
        img = WORLD.render_checked(row[None])[0]
        a = ask("P(angle, light | X=img)", story="pendulum", image=img, samples=200, seed=0)
        for f in ("angle", "light"):
            best = max(a.distribution[f], key=a.distribution[f].get)
            assert best == WORLD.label(f, row[WORLD.index(f)])


def test_an_edited_story_under_the_same_name_gets_no_model():
    edited = story_from_text(STORY.text.replace("sd = 0.4", "sd = 0.8"))
    assert shipped_checkpoint(edited) is None
    with pytest.raises(QueryError, match="needs a trained model"):
        ask("P(X | do(light=2), X=img)", story=edited, image=FACTUAL, samples=10)
    # comments aside, the same story still finds it
    assert shipped_checkpoint(story_from_text(STORY.text + "\n# a note\n")) is not None


def test_the_cli_writes_the_counterfactual_pictures(tmp_path):
    result = CliRunner().invoke(main, ["query", "P(X | do(light=2), X=img)", "--story", "pendulum", "--image",
                                       FACTUAL, "--out", str(tmp_path), "--seed", "0", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["model"].endswith("pendulum.safetensors")
    assert {p.name for p in tmp_path.iterdir()} >= {"evidence.png", "samples.png", "mean.png"}
