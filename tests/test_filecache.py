"""cvaeq.filecache: the one rule for when what was read from a file is stale."""

import os
import time

import pytest

from cvaeq import filecache
from cvaeq.errors import CheckpointError
from cvaeq.filecache import FileCache


@pytest.fixture
def cache(monkeypatch):
    """A cache that keeps a file read at once (the files here are fresh: the
    racy rule would not keep them), counting its reads."""
    monkeypatch.setattr(filecache, "RACY_NS", 0)
    c = FileCache("note", 2, CheckpointError)
    c.reads = []

    def load(path):
        c.reads.append(path.name)
        return path.read_bytes()

    c.load = load
    yield c
    filecache._ALL.remove(c)


def test_an_unchanged_file_is_read_once(cache, tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"one")
    assert cache.get(path, cache.load) == b"one" and cache.get(str(path), cache.load) == b"one"
    (tmp_path / "sub").mkdir()
    assert cache.get(tmp_path / "sub" / ".." / "a", cache.load) == b"one"  # the same file by another name
    assert cache.reads == ["a"]


@pytest.mark.parametrize("how", ["replaced", "in place, times set back"])
def test_a_file_of_the_same_size_and_other_content_is_read_again(cache, tmp_path, how):
    path = tmp_path / "a"
    path.write_bytes(b"one")
    assert cache.get(path, cache.load) == b"one"
    st = os.stat(path)
    time.sleep(0.05)  # a timestamp tick later (what RACY_NS, set to 0 here, otherwise waits for)
    if how == "replaced":
        (tmp_path / "new").write_bytes(b"two")
        os.replace(tmp_path / "new", path)
    else:
        path.write_bytes(b"two")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # cp -p, tar, rsync -t leave the old times
    assert cache.get(path, cache.load) == b"two"


def test_two_files_alternated_give_each_its_own_content(cache, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"AAA")
    b.write_bytes(b"BBB")
    for path, want in ((a, b"AAA"), (b, b"BBB"), (b, b"BBB"), (a, b"AAA"), (b, b"BBB")):
        assert cache.get(path, cache.load) == want
    assert cache.reads == ["a", "b"]


def test_a_file_changed_just_before_or_while_it_is_read_is_not_kept(cache, tmp_path, monkeypatch):
    path = tmp_path / "a"
    path.write_bytes(b"one")
    monkeypatch.setattr(filecache, "RACY_NS", 3600 * 10**9)  # "just before": within the last hour
    cache.get(path, cache.load)
    assert len(cache) == 0
    monkeypatch.setattr(filecache, "RACY_NS", 0)

    def rewritten_while_read(p):
        value = p.read_bytes()
        p.write_bytes(b"longer")
        return value

    assert cache.get(path, rewritten_while_read) == b"one"
    assert len(cache) == 0 and cache.get(path, cache.load) == b"longer"


def test_the_cache_is_bounded_least_recently_used_first(cache, tmp_path):
    paths = [tmp_path / n for n in "abc"]
    for p in paths:
        p.write_bytes(p.name.encode())
    cache.get(paths[0], cache.load), cache.get(paths[1], cache.load)
    cache.get(paths[0], cache.load)  # a is the most recently used
    cache.get(paths[2], cache.load)  # b goes
    assert len(cache) == 2
    cache.get(paths[0], cache.load), cache.get(paths[1], cache.load)
    assert cache.reads == ["a", "b", "c", "b"]


def test_a_file_gone_is_one_line_of_the_caches_error(cache, tmp_path):
    with pytest.raises(CheckpointError, match=r"missing: cannot read the note file \(No such file or directory\)"):
        cache.get(tmp_path / "missing", cache.load)


def test_clear_empties_every_file_cache(cache, tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"one")
    cache.get(path, cache.load)
    filecache.clear()
    assert len(cache) == 0 and len(filecache.CHECKPOINTS) == 0 and len(filecache.STORED_STORIES) == 0
