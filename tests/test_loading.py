"""load_model keeps checkpoints loaded: repeated queries skip the read, a
replaced or rewritten checkpoint is read again (cvaeq.filecache's one rule),
and the cache stays bounded."""

import os
import shutil
import time

import pytest

from cvaeq import filecache, loading
from cvaeq.loading import clear_cache, load_model, shipped_checkpoint
from cvaeq.query.answer import ask

pytestmark = pytest.mark.skipif(shipped_checkpoint() is None, reason="the shipped checkpoint is not installed")


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    """An empty cache; files written by a test are kept at once (the copies are
    fresh, and the rule would not keep a file changed in the last two seconds)."""
    monkeypatch.setattr(filecache, "RACY_NS", 0)
    clear_cache()
    yield
    clear_cache()


def _copy(tmp_path, name="m.safetensors"):
    return shutil.copyfile(shipped_checkpoint(), tmp_path / name)


def test_a_checkpoint_is_read_once_and_named_as_given(tmp_path, monkeypatch):
    path = _copy(tmp_path)
    first = load_model(str(path))
    reads = []
    import cvaeq.model.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda p: reads.append(p))
    again = load_model(path)
    assert again.image_model is first.image_model and reads == []
    other = tmp_path / "sub" / ".." / "m.safetensors"
    (tmp_path / "sub").mkdir()
    assert load_model(other).image_model is first.image_model
    assert load_model(other).name == str(other)


def test_a_rewritten_checkpoint_is_read_again(tmp_path):
    path = _copy(tmp_path)
    first = load_model(path)
    new = _copy(tmp_path, "new.safetensors")
    os.replace(new, path)  # as cvaeq train writes: a new file moved over the old
    assert load_model(path).image_model is not first.image_model
    second = load_model(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # rewritten in place
    assert load_model(path).image_model is not second.image_model


def test_the_cache_is_bounded(tmp_path):
    paths = [_copy(tmp_path, f"m{i}.safetensors") for i in range(loading.CACHE_SIZE + 1)]
    first = load_model(paths[0])
    for p in paths[1:]:
        load_model(p)
    assert len(filecache.CHECKPOINTS) == loading.CACHE_SIZE
    assert load_model(paths[0]).image_model is not first.image_model  # dropped, read again


def test_repeated_asks_reuse_the_model_and_answer_the_same(tmp_path):
    path = _copy(tmp_path)
    q, img = "P(X | do(shape=square), X=img)", "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"
    a = ask(q, image=img, model=path, seed=3, samples=20)
    b = ask(q, image=img, model=path, seed=3, samples=20)
    assert len(filecache.CHECKPOINTS) == 1
    assert a.to_json() == b.to_json() and (a.mean_image == b.mean_image).all()


def test_a_checkpoint_gone_is_one_clear_error(tmp_path):
    from cvaeq.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.safetensors")


def test_a_loaded_model_keeps_its_scm_and_clear_cache_forgets_it():
    """Repeated queries on one loaded model share its SCM (and so its noise
    priors); clear_cache() lets the model and its SCM go."""
    path = shipped_checkpoint()
    if path is None:
        pytest.skip("no shipped checkpoint installed")
    first = load_model(path).scm(with_image=True)
    assert load_model(path).scm(with_image=True) is first
    assert load_model(path).scm(with_image=False) is not first
    clear_cache()
    assert load_model(path).scm(with_image=True) is not first


def _changed(path, background=9.0):
    """Rewrite ``path`` in place with the same size and other weights: the
    decoder's background logit set to ``background`` (every pixel off the
    sprite's window then on, for a positive value), its checksum made again."""
    import json
    import struct

    from safetensors.torch import load as st_load

    from cvaeq.model.checkpoint import _digest

    data = bytearray(path.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    lo, hi = header["model.background"]["data_offsets"]
    data[8 + n + lo:8 + n + hi] = struct.pack("<f", background)
    info = header["__metadata__"]
    new = _digest(st_load(bytes(data)), info["meta"])
    at = data.index(info["sha256"].encode(), 8, 8 + n)
    data[at:at + len(new)] = new.encode()  # a hex digest of the same length
    path.write_bytes(bytes(data))


def _background(mech):
    return float(mech.image_model.background.detach())


def test_a_file_rewritten_in_place_with_the_same_size_is_read_again(tmp_path):
    """Same size, other content, rewritten in place and its modification time set
    back (as ``cp -p`` or ``tar`` leave it): the status-change time tells."""
    path = _copy(tmp_path)
    assert _background(load_model(path)) < 0
    st = os.stat(path)
    time.sleep(0.05)  # a timestamp tick later (what RACY_NS, set to 0 here, otherwise waits for)
    _changed(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert _background(load_model(path)) == 9.0


def test_a_file_changed_just_before_it_is_read_is_not_kept(tmp_path, monkeypatch):
    """The racy rule: a file changed less than RACY_NS ago could change again
    within the same timestamp tick, so what was read from it is not kept."""
    monkeypatch.setattr(filecache, "RACY_NS", 3_600 * 10**9)
    path = _copy(tmp_path)
    assert _background(load_model(path)) < 0
    assert len(filecache.CHECKPOINTS) == 0
    _changed(path)  # at once: the timestamps may not have moved
    assert _background(load_model(path)) == 9.0


def test_files_alternated_answer_as_each_alone(tmp_path):
    """Two checkpoints of one size and other weights, asked about in turns: each
    answer is the one its own file gives with an empty cache."""
    from cvaeq.query.answer import ask

    a = _copy(tmp_path, "a.safetensors")
    b = _copy(tmp_path, "b.safetensors")
    _changed(b)
    q, img = "P(X | do(shape=square), X=img)", "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"
    alone = {}
    for p in (a, b):
        clear_cache()
        alone[p] = ask(q, image=img, model=p, seed=1, samples=10).to_json()
    assert alone[a] != alone[b]
    clear_cache()
    for p in (a, b, b, a, b):
        assert ask(q, image=img, model=p, seed=1, samples=10).to_json() == alone[p]
    assert len(filecache.CHECKPOINTS) == 2
