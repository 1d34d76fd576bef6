"""The pong world: the renderer draws what the factors say, the story loads and says what it tells."""

import doctest
import time

import numpy as np
import pytest

import cvaeq_pong
import cvaeq_pong.world
from cvaeq.plugins import get_story_plugins, get_world_plugins
from cvaeq.query.answer import ask
from cvaeq.story import load_story
from cvaeq.world import get_world

WORLD = cvaeq_pong.WORLD


def one(ball="round", ballX=0, ballY=0, paddleX=0):
    return WORLD.render_checked(np.array([[cvaeq_pong.BALLS.index(ball), ballX, ballY, paddleX]]))[0]


def test_a_square_ball_fills_its_cell():
    img = one("square", ballX=5, ballY=3)
    top, left = 4 + 8 * 3, 8 * 5
    assert img[top : top + 8, left : left + 8].all()
    assert img[:56].sum() == 64, "something besides the 8x8 ball drawn above the paddle"


def test_a_round_ball_is_a_disk_in_its_cell():
    img = one("round", ballX=2, ballY=1)
    top, left = 12, 16
    cell = img[top : top + 8, left : left + 8]
    assert cell[2:6, 2:6].all() and cell[3:5].all() and cell[:, 3:5].all()  # the core and the cross
    assert not cell[0, 0] and not cell[7, 7] and not cell[0, 7]  # the corners stay dark
    assert img[:56].sum() == cell.sum()


def test_the_paddle_lies_under_its_column():
    img = one(paddleX=4)
    assert img[58:62, 28:44].all() and img[56:].sum() == 64
    edge = one(paddleX=7)  # cut off at the right edge: 12 pixels wide
    assert edge[58:62, 52:64].all() and edge[56:].sum() == 48


def test_each_factor_moves_only_its_object():
    base = one("round", 3, 2, 3)
    assert (one("round", 3, 2, 6)[:56] == base[:56]).all()  # paddle moved, ball not
    assert (one("round", 6, 2, 3)[56:] == base[56:]).all()  # ball moved, paddle not
    assert (one("square", 3, 2, 3) != base).sum() == 64 - base[:56].sum()  # the disk grows into a square


def test_every_picture_differs_and_the_grid_renders_fast():
    classes = WORLD.classes_array_of(np.arange(WORLD.n_images))
    seconds = []
    for _ in range(3):  # the best of three, so a busy machine does not fail it
        start = time.perf_counter()
        images = WORLD.render_checked(classes)
        seconds.append(time.perf_counter() - start)
    assert min(seconds) < 0.5
    assert images.shape == (768, 64, 64) and set(np.unique(images)) == {0, 1}
    assert len({img.tobytes() for img in images}) == 768


def test_doctests_run():
    for module in (cvaeq_pong, cvaeq_pong.world):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__


def test_registered_under_its_plugin(registered):
    assert get_world("pong") is WORLD
    assert get_world_plugins()["pong"] == "cvaeq-pong"
    assert get_story_plugins()["pong"] == "cvaeq-pong"
    assert WORLD.default_story == "pong"


def test_the_story_follows_its_telling(registered):
    story = load_story("pong")
    assert story.world is WORLD and story.latent_dim == 2
    assert set(story.graph.edges) >= {("ball", "ballY"), ("ballX", "paddleX")}
    assert story.parents("ballY") == ("ball",) and story.parents("paddleX") == ("ballX",)
    assert story.parents("ball") == () and story.parents("ballX") == ()
    round_, square = story.tables["ballY"]
    assert round_.argmax() == 0 and square.argmax() == 5  # round balls fly high, square ones low
    paddle = story.tables["paddleX"]
    assert (paddle.argmax(-1) == np.arange(8)).all()  # the paddle is most likely right under the ball
    assert (paddle > 0).all() and (story.tables["ballY"] > 0).all()  # every picture is possible
    np.testing.assert_allclose(story.tables["ballX"], 1 / 8)


def test_story_names_unknown_factors_of_this_world(registered):
    from cvaeq.errors import StoryError
    from cvaeq.story import story_from_text

    text = load_story("pong").text.replace("[factors.ballX]", "[factors.ballZ]")
    with pytest.raises(StoryError, match="'ballZ'.*ball, ballX, ballY, paddleX"):
        story_from_text(text)


def test_a_factor_query_from_the_story_truth(registered):
    # interventional: move the ball to the far right, and the paddle follows it
    a = ask("P(paddleX | do(ballX=7))", story="pong", samples=20_000, seed=0)
    got = np.array([a.distribution["paddleX"][str(k)] for k in range(8)])
    np.testing.assert_allclose(got, load_story("pong").tables["paddleX"][7], atol=0.01)
    # counterfactual: the ball was at column 1 with the paddle under it; had the ball been
    # at column 6, the paddle would have chased it there, and the ball's row stays as it was
    a = ask(
        "P(paddleX, ballY | do(ballX=6), ball=square, ballX=1, ballY=4, paddleX=1)", story="pong", samples=4000, seed=0
    )
    assert a.distribution["ballY"]["4"] == 1.0
    assert max(a.distribution["paddleX"], key=a.distribution["paddleX"].get) == "6"
    assert sum(p for k, p in a.distribution["paddleX"].items() if int(k) >= 4) > 0.8
