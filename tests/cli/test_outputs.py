"""No output replaces what is not a regular file (issue 25: ``data show --out /dev/null``, run as
root, turned the machine's /dev/null into a PNG by the atomic rename).

Every writer goes through :func:`cvaeq.paths.atomic_path`, which checks its target with
:func:`cvaeq.limits.checked_output`. Each test makes its own nodes in a temporary folder (a FIFO; a
character device where ``mknod`` is allowed, as root) and never touches a system path; it checks the
node is still what it was and that nothing half-written is left beside it.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.errors import CvaeqError, DataError, QueryError

SHOW = ["data", "show", "shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5", "--out"]


def _fifo(folder: Path) -> Path:
    path = folder / "pipe"
    os.mkfifo(path)
    return path


def _char_device(folder: Path) -> Path:
    """A character device with /dev/null's numbers, made in ``folder`` (needs CAP_MKNOD)."""
    path = folder / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a character device here ({e})")
    return path


def _target(tmp_path: Path, kind: str) -> tuple[Path, Path, str]:
    """``(path given to the writer, the node behind it, what that node must stay)``."""
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    if kind in ("fifo", "link-to-fifo"):
        node, mode = _fifo(nodes), "fifo"
    elif kind in ("chardev", "link-to-chardev"):
        node, mode = _char_device(nodes), "chr"
    elif kind == "folder":
        node, mode = nodes / "folder", "dir"
        node.mkdir()
    else:  # dangling link
        node, mode = nodes / "nothing", "missing"
    given = node
    if kind.startswith("link") or kind == "dangling":
        given = tmp_path / "link.out"
        given.symlink_to(node)
    return given, node, mode


def _still(node: Path, mode: str) -> None:
    if mode == "missing":
        assert not node.exists() and not node.is_symlink()
        return
    st = os.lstat(node)
    want = {"fifo": stat.S_ISFIFO, "chr": stat.S_ISCHR, "dir": stat.S_ISDIR}[mode]
    assert want(st.st_mode), f"{node} was replaced (mode {oct(st.st_mode)})"


def _leftovers(*folders: Path) -> list[str]:
    """Temporary files a writer left (atomic_path's ``.NAME.*.tmp`` or ``.NAME.*.png``; training's
    ``.NAME.lock`` stays by design)."""
    return [p.name for d in folders for p in d.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


def _one_line_2(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def _invoke(argv):
    """Run the CLI in a thread, failing (not hanging) if it blocks on a pipe."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", CliRunner().invoke(main, argv)), daemon=True)
    t.start()
    t.join(300)
    assert not t.is_alive(), "the writer blocked on its output"
    return out["r"]


KINDS = ["fifo", "link-to-fifo", "chardev", "link-to-chardev", "dangling", "folder"]

WRITERS = {
    "data show": SHOW + ["{}"],
    "data resample": ["data", "resample", "--story", "default", "--n", "4", "--seed", "0", "--out", "{}"],
    "data build": ["data", "build", "--out", "{}"],
    "train": ["train", "--n", "64", "--epochs", "1", "--batch", "32", "--eval-n", "8", "--quiet", "--out", "{}"],
}


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("kind", KINDS)
def test_no_writer_replaces_a_device_pipe_link_or_folder(tmp_path, monkeypatch, writer, kind):
    monkeypatch.chdir(tmp_path)
    given, node, mode = _target(tmp_path, kind)
    result = _invoke([a.replace("{}", str(given)) for a in WRITERS[writer]])
    err = _one_line_2(result)
    if kind != "folder" or writer == "train":  # click refuses a folder for the others (dir_okay=False)
        assert str(given) in err
    _still(node, mode)
    if given != node:
        assert given.is_symlink() and os.readlink(given) == str(node)
    assert _leftovers(tmp_path, node.parent) == []


@pytest.mark.parametrize("kind", ["fifo", "link-to-fifo", "chardev", "dangling"])
def test_query_out_a_node_instead_of_a_folder(tmp_path, kind):
    given, node, mode = _target(tmp_path, kind)
    result = _invoke(["query", "P(X | do(shape=square))", "--story", "default", "--samples", "2",
                      "--out", str(given)])
    assert "folder" in _one_line_2(result)
    _still(node, mode)


@pytest.mark.parametrize("kind", ["fifo", "chardev", "link-to-fifo", "folder"])
def test_query_out_folder_whose_file_is_a_node_writes_nothing(tmp_path, kind):
    """The folder is fine but one of the PNGs it would hold is a node: refused before any file is written."""
    out = tmp_path / "answer"
    out.mkdir()
    given, node, mode = _target(tmp_path, kind)
    os.symlink(node, out / "mean.png") if kind.startswith("link") else os.rename(given, out / "mean.png")
    node = out / "mean.png" if not kind.startswith("link") else node
    result = _invoke(["query", "P(X | do(shape=square))", "--story", "default", "--samples", "2",
                      "--out", str(out)])
    assert "mean.png" in _one_line_2(result)
    _still(node, mode)
    assert sorted(p.name for p in out.iterdir()) == ["mean.png"]  # no samples.png, no temporary file


def test_python_api_writers_refuse_too(tmp_path):
    import numpy as np

    from cvaeq.data.files import write_images
    from cvaeq.model.checkpoint import load_checkpoint, save_checkpoint
    from cvaeq.paths import output_lock
    from cvaeq.query.answer import ask
    from cvaeq.viz import save_image
    from cvaeq.world import get_world

    fifo = _fifo(tmp_path)
    ckpt = load_checkpoint(Path(__import__("cvaeq").__file__).parent / "weights" / "default.safetensors")
    calls = [
        lambda: save_image(np.zeros((64, 64)), fifo),
        lambda: save_checkpoint(fifo, ckpt.model, ckpt.story, ckpt.factor_logits, train_config={}, epoch=0),
        lambda: write_images(fifo, np.zeros((1, 64, 64), np.uint8), np.zeros((1, 5), np.int64),
                             world=get_world("dsprites")),
        lambda: output_lock(tmp_path / "ok.safetensors", fifo).__enter__(),
    ]
    for call in calls:
        with pytest.raises(CvaeqError, match="not a regular file"):
            call()
        _still(fifo, "fifo")
    with pytest.raises(QueryError, match="not a folder"):
        ask("P(X | do(shape=square))", story="default", samples=2, out=fifo)
    assert _leftovers(tmp_path) == []


def test_a_node_put_there_while_writing_is_not_replaced(tmp_path):
    """The target is checked again just before the rename (a pipe made meanwhile stays a pipe)."""
    from cvaeq.paths import atomic_path

    final = tmp_path / "out.png"
    with pytest.raises(DataError, match="not a regular file"):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"png")
            os.mkfifo(final)
    _still(final, "fifo")
    assert _leftovers(tmp_path) == []


def test_a_link_to_a_regular_file_is_written_through(tmp_path):
    """A link to a regular file: the file it points to is rewritten and the link stays (as ``open`` does)."""
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    result = CliRunner().invoke(main, SHOW + [str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_bytes().startswith(b"\x89PNG")
    assert _leftovers(tmp_path) == []
