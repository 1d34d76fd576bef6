"""Which story ``--story NAME`` and ``load_story(NAME)`` mean when the working
folder holds a file or folder of that name: a bare name is the registered
story; a path says so (a ``/`` or ``.toml``); both at once is refused."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.errors import StoryError
from cvaeq.story import load_story

QUERY = ["query", "P(light | do(angle=0))", "--samples", "20", "--seed", "0", "--json"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_folder_named_like_a_story_does_not_replace_it(here):
    (here / "pendulum").mkdir()  # what the README's `--out pendulum/` leaves behind
    assert load_story("pendulum").world.name == "pendulum"
    result = CliRunner().invoke(main, QUERY + ["--story", "pendulum"])
    assert result.exit_code == 0, result.output
    assert '"story": "pendulum"' in result.output


def test_a_file_named_like_a_story_is_refused_with_how_to_pick_it(here):
    (here / "pendulum").write_text(load_story("default").text)
    with pytest.raises(StoryError, match=r"both a registered story and a file .* \./pendulum for the file"):
        load_story("pendulum")
    result = CliRunner().invoke(main, QUERY + ["--story", "pendulum"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "./pendulum" in result.output and "Traceback" not in result.output
    # either one can be had
    assert load_story("./pendulum").world.name == "dsprites"
    assert load_story(Path("pendulum")).world.name == "dsprites"
    (here / "pendulum").unlink()
    assert load_story("pendulum").world.name == "pendulum"


def test_a_bare_name_that_is_only_a_file_is_that_file(here):
    (here / "mine").write_text(load_story("pendulum").text)
    assert load_story("mine").world.name == "pendulum"
    result = CliRunner().invoke(main, QUERY + ["--story", "mine"])
    assert result.exit_code == 0, result.output


def test_a_folder_is_not_a_story(here):
    (here / "notes").mkdir()
    with pytest.raises(StoryError, match="'notes' is a folder, not a story; known stories: colour_pendulum, default"):
        load_story("notes")
    with pytest.raises(StoryError, match="folder"):
        load_story("./notes")


@pytest.mark.parametrize("bad", [123, None, ["default"]])
def test_a_story_that_is_neither_name_nor_path_is_refused(bad):
    with pytest.raises(StoryError, match="registered name or a path"):
        load_story(bad)


def test_the_readmes_pendulum_sequence_runs(here):
    image = "angle=-18,light=13.25,shadow_length=3,shadow_position=6.4"
    first = CliRunner().invoke(main, ["query", "P(X | do(light=2), X=img)", "--story", "pendulum", "--image", image,
                                      "--out", "pendulum/", "--samples", "20"])
    assert first.exit_code == 0, first.output
    assert (here / "pendulum" / "mean.png").is_file()
    second = CliRunner().invoke(main, ["query", "E[shadow_position | do(light=2), X=img]", "--story", "pendulum",
                                       "--image", image, "--samples", "20"])
    assert second.exit_code == 0, second.output
    assert "shadow_position" in second.output


@pytest.mark.parametrize("bad", [123, 1.5, ["default"]])
def test_ask_refuses_a_story_that_is_neither_name_nor_path(bad):
    from cvaeq import ask

    with pytest.raises(StoryError, match="registered name or a path to a TOML file, not"):
        ask("P(shape)", story=bad)
