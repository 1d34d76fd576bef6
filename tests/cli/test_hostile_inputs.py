"""Whatever a user types, the CLI ends with exit 0, or with exit 2 and one
line on stderr: never a traceback (hypothesis over the CLI's inputs), and
the last line of defence turns system errors into one line."""

import errno
import os

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvaeq.cli import main

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = ["shape", "scale", "orientation", "posX", "posY"]
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e309", "-1e309", "nan", "inf", "1_0", "0x10", "١", "", " ", "9" * 5000, "1e-400", "heart"]),
    st.integers(min_value=-2**70, max_value=2**70).map(str),
    st.text(max_size=12),
)


def clean_exit(result):
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


values_or_valid = st.one_of(numbers, st.sampled_from(["0.5", "1", "0", "heart", "square", "0.75"]))


@SETTINGS
@given(values=st.lists(values_or_valid, min_size=5, max_size=5))
def test_data_show_with_any_factor_values(tmp_path, values):
    items = [f"{n}={v}" for n, v in zip(NAMES, values)]
    clean_exit(CliRunner().invoke(main, ["data", "show", *items, "--out", str(tmp_path / "x.png")]))


@SETTINGS
@given(values=st.lists(values_or_valid, min_size=5, max_size=5), seed=st.integers(min_value=-2, max_value=2**66),
       samples=st.integers(min_value=-2, max_value=2**66))
def test_query_with_any_image_factors_seed_and_samples(tmp_path, values, seed, samples):
    image = ",".join(f"{n}={v}" for n, v in zip(NAMES, values))
    # the shipped model: the image is read and used (a story alone cannot take an image)
    args = ["query", "P(shape | X=img)", "--image", image, "--seed", str(seed),
            "--samples", str(samples % 200 if samples > 0 else samples), "--out", str(tmp_path / "o")]
    clean_exit(CliRunner().invoke(main, args))


@SETTINGS
@given(text=st.binary(max_size=300))
def test_any_story_bytes(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_bytes(b'world = "dsprites"\n' + text)
    clean_exit(CliRunner().invoke(main, ["query", "P(shape)", "--story", str(path)]))


@pytest.mark.parametrize("story", [
    '[factors.shape]\nparents = []\nprobs = ' + "[" * 500 + "]" * 500,
    'name = "\udcff"',
])
def test_deep_or_undecodable_stories(tmp_path, story):
    path = tmp_path / "s.toml"
    path.write_bytes(story.encode("utf-8", "surrogateescape"))
    result = CliRunner().invoke(main, ["query", "P(shape)", "--story", str(path)])
    clean_exit(result)
    assert result.exit_code == 2


def test_an_output_whose_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "x.png"
    result = CliRunner().invoke(main, ["data", "show", *[f"{n}=0.5" for n in NAMES[1:]], "shape=heart",
                                       "--out", str(out)])
    clean_exit(result)
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr


def test_a_full_disk_while_saving_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import PIL.Image

    def full(self, fp, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fp))

    monkeypatch.setattr(PIL.Image.Image, "save", full)
    out = tmp_path / "x.png"
    result = CliRunner().invoke(main, ["data", "show", "shape=heart", "scale=1", "orientation=0", "posX=0.5",
                                       "posY=0.5", "--out", str(out)])
    clean_exit(result)
    assert result.exit_code == 2 and "No space left on device; free some space" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [MemoryError(), RecursionError("deep"), OSError(errno.EIO, "I/O error"),
                                   UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")])
def test_the_last_line_of_defence(monkeypatch, error):
    import cvaeq.data.grid

    def boom(*a, **k):
        raise error

    monkeypatch.setattr(cvaeq.data.grid, "show_image", boom)
    args = ["data", "show", "shape=heart", "--out", "x.png"]
    result = CliRunner().invoke(main, args)
    clean_exit(result)
    assert result.exit_code == 2
    # with CVAEQ_DEBUG=1 the traceback is kept, for developers
    monkeypatch.setenv("CVAEQ_DEBUG", "1")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, type(error))


def test_other_exceptions_are_bugs_and_keep_their_traceback(monkeypatch):
    import cvaeq.data.grid

    def bug(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cvaeq.data.grid, "show_image", bug)
    result = CliRunner().invoke(main, ["data", "show", "shape=heart", "--out", "x.png"])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


@pytest.mark.parametrize("args", [
    ["data", "show", "shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5", "--out", "a\0b.png"],
    ["query", "P(shape | X=img)", "--image", "x" * 5000 + "=1"],
    ["query", "P(shape)", "--story", "x" * 5000 + ".toml"],
    ["query", "P(shape)", "--model", "a\0b"],
    ["train", "--out", "a\0b", "--quiet"],
])
def test_impossible_file_names(args):
    result = CliRunner().invoke(main, args)
    clean_exit(result)
    assert result.exit_code == 2
