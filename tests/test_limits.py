"""Every file a user names is a regular file of a plausible size before it is
read: a device (/dev/zero), a pipe or an oversized file is one line and exit 2,
never a read until memory runs out, nor a hang."""

import os
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.errors import CheckpointError, CvaeqError, DataError, StoryError
from cvaeq.images import load_image
from cvaeq.limits import MAX_STORY_BYTES, checked_file, read_limited
from cvaeq.story import load_story


def one_line_exit_2(result, expected: str):
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output and expected in result.output, result.output


@pytest.fixture
def fifo(tmp_path):
    """A named pipe that nobody writes to: reading it would hang forever."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_a_device_or_pipe_is_refused_before_reading(fifo):
    for path in ("/dev/zero", fifo):
        with pytest.raises(DataError, match="not a regular file"):
            read_limited(path, "story", 100)


def test_a_file_larger_than_the_bound_is_refused(tmp_path):
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_STORY_BYTES + 1))
    with pytest.raises(StoryError, match=f"more than the {MAX_STORY_BYTES:,}"):
        load_story(big)
    with pytest.raises(DataError, match="is a folder"):
        checked_file(tmp_path, "grid", 10)


def _with_timeout(fn):
    """Run ``fn`` in a thread; fail (not hang) if it blocks."""
    out = {}

    def target():
        try:
            out["r"] = fn()
        except BaseException as e:  # handed back to the test's thread
            out["e"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "blocked reading a pipe"
    if "e" in out:
        raise out["e"]
    return out["r"]


@pytest.mark.parametrize("args", [
    ["eval", "--model", "{}", "--quiet"],
    ["query", "P(shape)", "--model", "{}"],
    ["query", "P(shape)", "--story", "{}"],
    ["query", "P(X | X=img)", "--story", "default", "--image", "{}"],
    ["train", "--resume", "{}", "--quiet"],
    ["data", "resample", "--n", "10", "--seed", "0", "--npz", "{}", "--out", "x.npz"],
])
@pytest.mark.parametrize("kind", ["dev", "fifo"])
def test_every_named_file_is_checked_at_the_cli(tmp_path, fifo, args, kind, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default outputs (train's model.safetensors and its lock) land here
    path = "/dev/zero" if kind == "dev" else str(fifo)
    if "--image" in args:  # images are named by their extension
        target = tmp_path / "img.png"
        target.symlink_to(path)
        path = str(target)
    argv = [a.replace("{}", path) for a in args]
    result = _with_timeout(lambda: CliRunner().invoke(main, argv))
    one_line_exit_2(result, "not a regular file")


def test_python_api_entries_check_files_too(fifo):
    from cvaeq.data.files import load_grid
    from cvaeq.model.checkpoint import load_checkpoint

    for call, err in ((load_checkpoint, CheckpointError), (load_grid, DataError), (load_story, StoryError)):
        with pytest.raises(err, match="not a regular file"):
            _with_timeout(lambda: call(fifo))
    link = fifo.parent / "x.npy"
    link.symlink_to(fifo)
    with pytest.raises(CvaeqError, match="not a regular file"):
        _with_timeout(lambda: load_image(str(link)))


@pytest.mark.parametrize("args, bound", [
    (["data", "resample", "--n", "100000000", "--seed", "0"], "1<=x<=1000000"),
    (["data", "resample", "--n", "10", "--seed", str(2**64)], "0<=x<=9223372036854775807"),
    (["data", "build", "--workers", "100000"], "1<=x<=256"),
    (["train", "--n", "100000000"], "1<=x<=1000000"),
    (["train", "--threads", "0"], "1<=x<=256"),
    (["train", "--eval-n", "10000000"], "1<=x<=100000"),
    (["train", "--seed", str(2**64)], "0<=x<=9223372036854775807"),
    (["eval", "--n", "10000000"], "1<=x<=100000"),
    (["eval", "--samples", "100000000"], "1<=x<=100000"),
    (["eval", "--threads", "0"], "1<=x<=256"),
    (["query", "P(shape)", "--story", "default", "--seed", str(2**64)], "0<=x<=9223372036854775807"),
])
def test_every_count_is_bounded_and_the_error_says_the_bound(args, bound):
    result = CliRunner().invoke(main, args)
    one_line_exit_2(result, bound)


def test_the_python_api_has_the_same_bounds():
    from cvaeq.data.resample import resample
    from cvaeq.model.train import TrainConfig

    with pytest.raises(DataError, match="from 1 to 1,000,000"):
        resample("default", 100_000_000, seed=0)
    with pytest.raises(CvaeqError, match="--n must be an integer from 1 to 1,000,000"):
        TrainConfig(n=100_000_000).validate()
    with pytest.raises(CvaeqError, match="--seed"):
        TrainConfig(seed=2**64).validate()


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(n=st.integers(-2, 2**70), epochs=st.integers(-2, 2**70), batch=st.integers(-2, 2**70),
       eval_n=st.integers(-2, 2**70), seed=st.integers(-2, 2**70), lr=st.floats(), uniform=st.floats(),
       aux=st.none() | st.floats(), limit=st.none() | st.floats())
def test_any_training_config_is_valid_or_a_one_line_error(n, epochs, batch, eval_n, seed, lr, uniform, aux, limit):
    from cvaeq.model.train import TrainConfig

    config = TrainConfig(n=n, epochs=epochs, batch=batch, eval_n=eval_n, seed=seed, lr=lr, uniform=uniform,
                         aux_weight=aux, time_limit=limit)
    try:
        config.validate()
    except CvaeqError as e:
        assert "\n" not in str(e)
        return
    assert 1 <= n <= 1_000_000 and 0 <= seed < 2**63 and lr > 0 and 0 <= uniform < 1


@pytest.mark.parametrize("what, bound", [("story", MAX_STORY_BYTES), ("image", 16 << 20), ("checkpoint", 4 << 30),
                                         ("grid", 64 << 30)])
def test_a_file_of_exactly_the_documented_maximum_is_accepted_and_one_byte_more_refused(tmp_path, what, bound):
    """The bounds are inclusive ("no larger than"): the edge on both sides, with
    sparse files (truncate writes no data, so even the 64 GiB one costs no disk)."""
    from cvaeq import limits

    constant = {"story": limits.MAX_STORY_BYTES, "image": limits.MAX_IMAGE_BYTES,
                "checkpoint": limits.MAX_CHECKPOINT_BYTES, "grid": limits.MAX_GRID_BYTES}[what]
    assert constant == bound  # the documented figure (docs/cli.md)
    edge = tmp_path / "edge"
    with open(edge, "wb") as f:
        f.truncate(bound)
    assert checked_file(edge, what, bound) == edge
    with open(edge, "r+b") as f:
        f.truncate(bound + 1)
    with pytest.raises(DataError, match=f"{bound + 1:,} bytes, more than the {bound:,}"):
        checked_file(edge, what, bound)


def test_read_limited_reads_a_file_of_exactly_the_maximum_whole(tmp_path):
    edge = tmp_path / "story.toml"
    edge.write_bytes(b"#" * 1000)
    assert read_limited(edge, "story", 1000) == b"#" * 1000
    edge.write_bytes(b"#" * 1001)
    with pytest.raises(DataError, match="more than the 1,000"):
        read_limited(edge, "story", 1000)
    with open(tmp_path / "sparse.toml", "wb") as f:
        f.truncate(MAX_STORY_BYTES)  # the documented maximum, through the story loader's own bound
    assert len(read_limited(tmp_path / "sparse.toml", "story", MAX_STORY_BYTES)) == MAX_STORY_BYTES


def test_a_file_that_grows_past_the_bound_between_check_and_read_is_refused(tmp_path, monkeypatch):
    """read_limited reads at most max + 1 bytes: a file that grew after its size was checked is refused."""
    from cvaeq import limits

    path = tmp_path / "s.toml"
    path.write_bytes(b"#" * 10)
    monkeypatch.setattr(limits, "checked_file", lambda p, *a, **k: (path.write_bytes(b"#" * 11), p)[1])
    with pytest.raises(DataError, match="more than the 10 bytes"):
        read_limited(path, "story", 10)


@pytest.mark.parametrize("low, bound", [(1, 10), (0, 2**63 - 1)])
def test_check_count_takes_both_ends_and_refuses_one_past_them(low, bound):
    from cvaeq.limits import check_count

    assert check_count(low, "--n", bound, low=low) == low
    assert check_count(bound, "--n", bound, low=low) == bound
    for outside in (low - 1, bound + 1):
        with pytest.raises(CvaeqError, match=f"from {low:,} to {bound:,}, got {outside}"):
            check_count(outside, "--n", bound, low=low)
