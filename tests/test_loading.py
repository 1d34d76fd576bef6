"""load_mechanisms keeps checkpoints loaded: repeated queries skip the read,
a rewritten checkpoint is read again, and the cache stays bounded."""

import os
import shutil

import pytest

from cvaeq import loading
from cvaeq.loading import clear_cache, load_mechanisms, shipped_checkpoint
from cvaeq.query.answer import ask

pytestmark = pytest.mark.skipif(shipped_checkpoint() is None, reason="the shipped checkpoint is not installed")


@pytest.fixture(autouse=True)
def _empty_cache():
    clear_cache()
    yield
    clear_cache()


def _copy(tmp_path, name="m.safetensors"):
    return shutil.copyfile(shipped_checkpoint(), tmp_path / name)


def test_a_checkpoint_is_read_once_and_named_as_given(tmp_path, monkeypatch):
    path = _copy(tmp_path)
    first = load_mechanisms(str(path))
    reads = []
    import cvaeq.model.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda p: reads.append(p))
    again = load_mechanisms(path)
    assert again.image_model is first.image_model and reads == []
    other = tmp_path / "sub" / ".." / "m.safetensors"
    (tmp_path / "sub").mkdir()
    assert load_mechanisms(other).image_model is first.image_model
    assert load_mechanisms(other).name == str(other)


def test_a_rewritten_checkpoint_is_read_again(tmp_path):
    path = _copy(tmp_path)
    first = load_mechanisms(path)
    new = _copy(tmp_path, "new.safetensors")
    os.replace(new, path)  # as cvaeq train writes: a new file moved over the old
    assert load_mechanisms(path).image_model is not first.image_model
    second = load_mechanisms(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # rewritten in place
    assert load_mechanisms(path).image_model is not second.image_model


def test_the_cache_is_bounded(tmp_path):
    paths = [_copy(tmp_path, f"m{i}.safetensors") for i in range(loading.CACHE_SIZE + 1)]
    first = load_mechanisms(paths[0])
    for p in paths[1:]:
        load_mechanisms(p)
    assert len(loading._cache) == loading.CACHE_SIZE
    assert load_mechanisms(paths[0]).image_model is not first.image_model  # dropped, read again


def test_repeated_asks_reuse_the_model_and_answer_the_same(tmp_path):
    path = _copy(tmp_path)
    q, img = "P(X | do(shape=square), X=img)", "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"
    a = ask(q, image=img, model=path, seed=3, samples=20)
    b = ask(q, image=img, model=path, seed=3, samples=20)
    assert len(loading._cache) == 1
    assert a.to_json() == b.to_json() and (a.mean_image == b.mean_image).all()


def test_a_checkpoint_gone_is_one_clear_error(tmp_path):
    from cvaeq.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_mechanisms(tmp_path / "missing.safetensors")


def test_loaded_mechanisms_keep_their_scm_and_clear_cache_forgets_it():
    """Repeated queries on one loaded model share its SCM (and so its noise
    priors); clear_cache() lets the model and its SCM go."""
    path = shipped_checkpoint()
    if path is None:
        pytest.skip("no shipped checkpoint installed")
    first = load_mechanisms(path).scm(with_image=True)
    assert load_mechanisms(path).scm(with_image=True) is first
    assert load_mechanisms(path).scm(with_image=False) is not first
    clear_cache()
    assert load_mechanisms(path).scm(with_image=True) is not first
