"""cvaeq's anti-causal predictors: they learn, their floor is measured on held-out pictures, they are
deterministic, saved as safetensors and kept in a cache that a change of data makes stale."""

import numpy as np
import pytest
import torch

from cvaeq.errors import CheckpointError, DataError
from cvaeq.evaluation import predictors as P
from cvaeq.plugins import get_plugin_manager
from cvaeq.story import story_from_text

from .toyworlds import STORY, SquaresStory, ToyWorlds, squares


@pytest.fixture(scope="module")
def story():
    pm = get_plugin_manager()
    plugin = ToyWorlds()
    pm.register(plugin, name="toy-tf-predictors")
    try:
        yield story_from_text(STORY.format(world="toy_tf_blocks"))
    finally:
        pm.unregister(plugin)


@pytest.fixture(scope="module")
def data(story):
    return P.training_pictures(story, seed=0, n_train=600, n_test=200)


@pytest.fixture(scope="module")
def trained(story, data):
    return P.train_predictors(story, *data, seed=0, epochs=6, progress=False)


def test_classifiers_read_the_blocks_and_their_floor_is_measured_on_held_out_pictures(trained, data):
    # 24 distinct pictures, each drawing its classes: a working classifier reads them all
    assert set(trained.floor) == {"kind", "x", "y"}
    assert all(v >= 0.95 for v in trained.floor.values()), trained.floor
    assert trained.floor_n == 200 and all(lo <= trained.floor[f] <= hi for f, (lo, hi) in trained.floor_ci.items())
    read = trained.read(data[1][0])
    assert read["x"].dtype == np.int64 and read["x"].shape == (200,)
    # categorical factors read the picture alone (no conditioning on children)
    assert all(trained.conditions_of(f) == () for f in ("kind", "x", "y"))


def test_the_same_seed_trains_the_same_predictors(story, data, trained):
    again = P.train_predictors(story, *data, seed=0, epochs=6, progress=False)
    for k, v in trained.net.state_dict().items():
        assert torch.equal(v, again.net.state_dict()[k])
    other = P.train_predictors(story, *data, seed=1, epochs=6, progress=False)
    assert not torch.equal(other.net.state_dict()["trunk.0.weight"], trained.net.state_dict()["trunk.0.weight"])


def test_saved_predictors_read_back_identically_from_safetensors(tmp_path, trained, story, data):
    path = tmp_path / "p.safetensors"
    trained.save(path)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # no pickle: safetensors starts with its header length
    back = P.Predictors.load(path, story.world)
    a, b = trained.read(data[1][0]), back.read(data[1][0])
    assert all((a[f] == b[f]).all() for f in a)
    assert back.floor == trained.floor and back.floor_ci == trained.floor_ci
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        P.Predictors.load(path, story.world)


def test_the_cache_is_read_when_the_data_are_the_same_and_stale_when_they_change(tmp_path, story, data, monkeypatch):
    first = P.predictors_for(story, data=data, epochs=1, progress=False, directory=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"

    def no_training(*a, **k):
        raise AssertionError("trained again although the cache holds these predictors")

    monkeypatch.setattr(P, "train_predictors", no_training)
    again = P.predictors_for(story, data=data, epochs=1, progress=False, directory=tmp_path)
    assert again.floor == first.floor
    # one picture changed: a new key, so the cached file is not used
    (tr_x, tr_v), test = data
    changed = ((tr_x.copy(), tr_v), test)
    changed[0][0][0, 0, 0] ^= 1
    with pytest.raises(AssertionError, match="trained again"):
        P.predictors_for(story, data=changed, epochs=1, progress=False, directory=tmp_path)


def test_a_damaged_cache_file_is_trained_again_and_a_non_file_is_left_alone(tmp_path, story, data):
    first = P.predictors_for(story, data=data, epochs=1, progress=False, directory=tmp_path)
    path = next(tmp_path.iterdir())
    path.write_bytes(b"\x00" * 20)
    again = P.predictors_for(story, data=data, epochs=1, progress=False, directory=tmp_path)
    assert again.floor == first.floor and P.Predictors.load(path, story.world).floor == first.floor
    path.unlink()
    path.mkdir()  # something that is not a regular file where the cache would go
    P.predictors_for(story, data=data, epochs=1, progress=False, directory=tmp_path)
    assert path.is_dir()
    with pytest.raises(DataError, match="not a regular file"):
        first.save(path)


def test_a_regressor_per_continuous_factor_conditioned_on_its_children():
    story = SquaresStory()
    train, test = squares(800, 0), squares(200, 1)
    pred = P.train_predictors(story, train, test, seed=0, epochs=8, progress=False)
    assert pred.conditions_of("size") == ("bright",) and pred.conditions_of("bright") == ()
    assert pred.conditions_of("kind") == ()
    values = test[1]
    read = pred.read(test[0], {"bright": values[:, 2]})
    assert read["size"].dtype == np.float64 and read["kind"].dtype == np.int64
    # the floor is the MAE on held-out pictures, in the factor's units, and beats guessing the mean by far
    guess = {f: np.abs(values[:, i] - train[1][:, i].mean()).mean() for i, f in ((1, "size"), (2, "bright"))}
    assert pred.floor["size"] == pytest.approx(np.abs(read["size"] - values[:, 1]).mean())
    assert pred.floor["size"] < 0.5 * guess["size"] and pred.floor["bright"] < 0.5 * guess["bright"]
    assert pred.floor["kind"] >= 0.95
    with pytest.raises(ValueError, match="bright"):
        pred.read(test[0])  # the size regressor needs the bright values it is conditioned on


def test_pictures_of_the_wrong_shape_are_refused(trained):
    with pytest.raises(DataError, match="shape"):
        trained.read(np.zeros((2, 7, 7), np.uint8))


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CVAEQ_CACHE", str(tmp_path))
    assert P.cache_dir() == tmp_path / "predictors"
    monkeypatch.delenv("CVAEQ_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert P.cache_dir() == tmp_path / "xdg" / "cvaeq" / "predictors"
