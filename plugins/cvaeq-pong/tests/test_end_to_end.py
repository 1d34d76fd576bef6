"""End to end: train a tiny causal VAE on the pong story, then ask it image
counterfactuals and score them against the true counterfactual, which the
world's renderer draws. Through Python and through the CLI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import cvaeq_pong
from cvaeq.cli import main
from cvaeq.images import load_image
from cvaeq.loading import load_model
from cvaeq.plugins import get_plugin_manager
from cvaeq.query.answer import ask
from cvaeq.story import load_story

WORLD = cvaeq_pong.WORLD
#: Networks small enough to learn pong in about 190 steps of 32 images (half a minute of a CPU).
SMALL = {
    "patch_channels": 8,
    "merge_channels": 16,
    "hidden": 64,
    "dec_channels": 16,
    "cell_hidden": 32,
    "dec_hidden": 128,
    "dec_layers": 1,
}
#: The factual picture: a square ball at column 1, row 4, the paddle right under it.
FACTUAL = {"ball": "square", "ballX": 1, "ballY": 4, "paddleX": 1}


def picture(ball, ballX, ballY, paddleX):
    return WORLD.render_checked(np.array([[cvaeq_pong.BALLS.index(ball), ballX, ballY, paddleX]]))[0]


def iou(a, b):
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A causal VAE trained on the story ``pong``, the plugin registered for the whole module."""
    from cvaeq.model.train import TrainConfig, train

    pm = get_plugin_manager()
    ours = not pm.is_registered(cvaeq_pong)
    if ours:
        pm.register(cvaeq_pong, name="cvaeq-pong")
    root = tmp_path_factory.mktemp("pong")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVAEQ_HOME", str(root / "home"))
        config = TrainConfig(story="pong", n=2000, epochs=3, batch=32, lr=1e-2, eval_n=200, device="cpu")
        path = train(config, out=root / "m.safetensors", progress=False, log=lambda msg: None)
    yield path
    if ours:
        pm.unregister(cvaeq_pong)


def test_the_worlds_model_arch_sized_the_networks(checkpoint):
    # no --arch was given: the small networks come from WORLD.model_arch, and the checkpoint records them
    from cvaeq.model.checkpoint import load_checkpoint

    arch = load_checkpoint(checkpoint).meta["arch"]
    assert {k: arch[k] for k in SMALL} == SMALL and arch["window"] == 0


def test_lifting_the_ball_moves_only_the_ball(checkpoint):
    # do(ballY=0) has no descendants: the true counterfactual is one picture, the ball lifted to row 0
    evidence = picture(**FACTUAL)
    truth = picture(**{**FACTUAL, "ballY": 0})
    a = ask("P(X | do(ballY=0), X=img)", model=checkpoint, image=evidence, samples=64, seed=0)
    assert a.rung == "counterfactual" and a.mean_image.shape == (64, 64)
    assert iou(evidence, truth) < 0.35  # doing nothing is far from the truth
    assert iou(a.mean_image, truth) > 0.85
    assert np.abs(a.mean_image - truth).mean() < 0.2 * np.abs(evidence - truth.astype(float)).mean()


def test_moving_the_ball_drags_the_paddle_as_the_story_says(checkpoint):
    # do(ballX=6): the paddle chases the ball. The true counterfactual is a mixture of pictures,
    # weighted by the paddle's counterfactual distribution under the story's own SCM.
    evidence = picture(**FACTUAL)
    given = ", ".join(f"{f}={v}" for f, v in FACTUAL.items())
    truth = ask(f"P(paddleX | do(ballX=6), {given})", story="pong", samples=20_000, seed=0)
    weights = {int(k): p for k, p in truth.distribution["paddleX"].items()}
    true_mean = sum(p * picture(**{**FACTUAL, "ballX": 6, "paddleX": k}) for k, p in weights.items())
    a = ask("P(X | do(ballX=6), X=img)", model=checkpoint, image=evidence, samples=200, seed=0)
    assert np.abs(a.mean_image - true_mean).mean() < 0.2 * np.abs(evidence - true_mean).mean()
    ball = a.mean_image[36:44, 48:56]  # the 8x8 cell of column 6, row 4
    assert ball[2:6, 2:6].mean() > 0.95 and ball.mean() > 0.8  # the ball is there, surely
    assert a.mean_image[58:62, 44:60].mean() > 0.5  # the paddle most likely under it
    assert a.mean_image[58:62, :16].mean() < 0.1  # and no longer at column 1


def test_the_paddle_read_off_a_picture_chases_the_ball_as_in_the_story(checkpoint):
    # the same counterfactual asked of the picture (the model reads the factors) and of the
    # factors themselves (the story's truth): the paddle's distributions agree
    given = ", ".join(f"{f}={v}" for f, v in FACTUAL.items())
    truth = ask(f"P(paddleX | do(ballX=6), {given})", story="pong", samples=20_000, seed=0)
    a = ask("P(paddleX | do(ballX=6), X=img)", model=checkpoint, image=picture(**FACTUAL), samples=2000, seed=0)
    tv = 0.5 * sum(abs(a.distribution["paddleX"][k] - p) for k, p in truth.distribution["paddleX"].items())
    assert tv < 0.1


def test_the_cli_end_to_end(checkpoint, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["plugins"])
    assert r.exit_code == 0 and "pong" in r.output and "cvaeq-pong" in r.output
    png = tmp_path / "pong.png"
    r = runner.invoke(
        main, ["data", "show", "--world", "pong", "ball=square", "ballX=1", "ballY=4", "paddleX=1", "--out", str(png)]
    )
    assert r.exit_code == 0, r.output
    assert (load_image(png, WORLD) == picture(**FACTUAL)).all()
    r = runner.invoke(
        main,
        [
            "query",
            "P(X | do(ballY=0), X=img)",
            "--model",
            str(checkpoint),
            "--image",
            "ball=square,ballX=1,ballY=4,paddleX=1",
            "--samples",
            "32",
            "--out",
            str(tmp_path / "answer"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)
    assert answer["rung"] == "counterfactual" and answer["predicted"]["ballY"] == "0"
    with Image.open(answer["images"]["mean"]) as png:  # grey: the probability of each pixel
        mean = np.asarray(png.convert("L")) / 255
    assert mean.shape == (64, 64) and iou(mean, picture(**{**FACTUAL, "ballY": 0})) > 0.85
    r = runner.invoke(
        main,
        [
            "query",
            "P(X | do(ballY=0), X=img)",
            "--model",
            str(checkpoint),
            "--image",
            "ball=square,ballX=1,ballY=9,paddleX=1",
        ],
    )
    assert r.exit_code == 2 and "ballY" in r.output


def test_the_cli_trains_on_the_story(registered, tmp_path):
    out = tmp_path / "cli.safetensors"
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--story",
            "pong",
            "--n",
            "64",
            "--epochs",
            "1",
            "--batch",
            "32",
            "--eval-n",
            "16",
            "--arch",
            "hidden=16,dec_hidden=16,dec_layers=1",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert load_model(out, None).story.world is WORLD


@pytest.mark.slow
def test_the_cli_evaluates_the_model_against_the_rendered_truth(checkpoint):
    r = CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            str(checkpoint),
            "--n",
            "20",
            "--samples",
            "20",
            "--tv-particles",
            "2000",
            "--quiet",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    scores = json.loads(r.output)
    assert scores["world"] == "pong"
    assert min(scores["factor_accuracy"].values()) > 0.95
    assert scores["counterfactual"]["iou"]["ballY"] > 0.85


def test_the_checkpoint_knows_its_world(checkpoint):
    mech = load_model(checkpoint, None)
    assert mech.story.world is WORLD and mech.story.name == "pong"
    np.testing.assert_allclose(mech.story.tables["paddleX"], load_story("pong").tables["paddleX"])
