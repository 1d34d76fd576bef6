"""atomic_path: all or nothing, with the permissions a plain write gives."""

import os
import stat

import pytest

from cvaeq.paths import atomic_path


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_new_file_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("hi")
        with open(tmp_path / "b.txt", "w") as f:  # what a plain write gives
            f.write("hi")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "b.txt") == 0o644


def test_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o600)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert _mode(target) == 0o600


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "..", "", "x\0y", "a\\b"])
def test_cache_paths_from_names_never_leave_the_cache(name):
    from cvaeq.errors import CvaeqError
    from cvaeq.paths import cache_path

    with pytest.raises(CvaeqError, match="not a plain file name"):
        cache_path(name)


def test_a_story_name_that_walks_out_of_the_cache_becomes_a_digest(tmp_path):
    # `name` comes from the story file; the default output of `cvaeq data resample` stays in $CVAEQ_HOME
    from pathlib import Path

    from click.testing import CliRunner

    from cvaeq.cli import main
    from cvaeq.paths import home
    from cvaeq.story import load_story

    story = tmp_path / "evil.toml"
    story.write_text(load_story("default").text.replace('name = "default"', 'name = "x/../../../../elsewhere"'))
    result = CliRunner().invoke(main, ["data", "resample", "--story", str(story), "--n", "5", "--seed", "0"])
    assert result.exit_code == 0, result.output
    written = Path(result.stdout.strip().splitlines()[-1]).resolve()
    assert written.parent == home().resolve() and written.name.startswith("resampled-story-")
