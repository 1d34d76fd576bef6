import numpy as np
import pytest
import torch
from PIL import Image

from cvaeq.errors import CheckpointError, CvaeqError
from cvaeq.model.checkpoint import load_checkpoint
from cvaeq.model.cvae import CausalVAE
from cvaeq.model.train import TrainConfig, epoch_ticks, load_training_data, loss_png_path, train

from .conftest import TINY


def _config(**kw):
    base = dict(n=64, epochs=1, batch=16, eval_n=16, seed=5, lr=3e-3, device="cpu", arch=dict(TINY))
    base.update(kw)
    return TrainConfig(**base)


def test_loss_decreases_on_tiny_data(tiny_arch, tiny_data):
    images, classes = tiny_data
    torch.manual_seed(0)
    model = CausalVAE(tiny_arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(images[:32]).float(), torch.from_numpy(classes[:32])
    first = model.loss(x, y)[1]
    for _ in range(60):
        loss, _ = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = model.loss(x, y)[1]
    assert last["elbo_nats"] < 0.6 * first["elbo_nats"]
    assert last["aux_nll"] < first["aux_nll"]


def test_train_writes_a_loadable_checkpoint_and_a_png(tmp_path):
    out = tmp_path / "m.safetensors"
    train(_config(epochs=2), out, progress=False, log=lambda m: None)
    ckpt = load_checkpoint(out)
    assert ckpt.epoch == 2 and len(ckpt.meta["history"]) == 2
    assert set(ckpt.meta["history"][-1]["eval_uniform"]["accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    ev = ckpt.meta["history"][-1]["eval"]
    assert set(ev["accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    assert np.isfinite(ev["elbo_nats"]) and 0 <= ev["recon_iou"] <= 1
    assert ckpt.meta["train_config"]["n"] == 64 and ckpt.meta["data_seed"] == 5
    with Image.open(loss_png_path(out)) as png:
        assert png.format == "PNG" and png.size[0] > 100


def test_resume_continues_exactly_where_the_run_left_off(tmp_path):
    straight, part = tmp_path / "straight.safetensors", tmp_path / "part.safetensors"
    train(_config(epochs=2), straight, progress=False, log=lambda m: None)
    # A run planned for 2 epochs, interrupted (Ctrl-C) once epoch 1 is checkpointed:
    def interrupt(message):
        if message.startswith("epoch 1:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(epochs=2), part, progress=False, log=interrupt)
    assert load_checkpoint(part).epoch == 1
    # Resume reads data size, seed and model from the checkpoint; only the length changes.
    train(_config(epochs=2, n=999, seed=0), part, resume=part, progress=False, log=lambda m: None)
    a, b = load_checkpoint(straight), load_checkpoint(part)
    assert b.epoch == 2 and b.meta["train_config"]["n"] == 64
    assert [h["orientation_loss"] for h in b.meta["history"]] == ["exact", "exact"]
    for name, t in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[name], t, rtol=1e-5, atol=1e-6)
    assert a.optimizer_state["state"][0]["step"] == b.optimizer_state["state"][0]["step"]


def test_resume_from_a_broken_file_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    with pytest.raises(CheckpointError):
        train(_config(), tmp_path / "m.safetensors", resume=bad, progress=False)


def test_bad_settings_are_user_errors(tmp_path):
    with pytest.raises(CvaeqError, match="--batch"):
        train(_config(batch=0), tmp_path / "m.safetensors", progress=False)
    with pytest.raises(CvaeqError, match="smaller than one batch"):
        train(_config(n=8, batch=16), tmp_path / "m.safetensors", progress=False, log=lambda m: None)
    assert not (tmp_path / "m.safetensors").exists()


def test_a_resumed_run_may_change_the_orientation_loss_and_says_so_per_epoch(tmp_path):
    out = tmp_path / "m.safetensors"
    train(_config(epochs=1, orientation_loss="symmetric"), out, progress=False, log=lambda m: None)
    assert load_checkpoint(out).model.orientation_loss == "symmetric"
    train(_config(epochs=2), out, resume=out, progress=False, log=lambda m: None)  # not given: kept
    assert [h["orientation_loss"] for h in load_checkpoint(out).meta["history"]] == ["symmetric", "symmetric"]
    train(_config(epochs=3, orientation_loss="exact"), out, resume=out, progress=False, log=lambda m: None)
    ckpt = load_checkpoint(out)
    assert [h["orientation_loss"] for h in ckpt.meta["history"]] == ["symmetric", "symmetric", "exact"]
    assert ckpt.model.orientation_loss == "exact" and 0 <= ckpt.meta["history"][-1]["eval"]["orientation_exact"] <= 1
    with pytest.raises(CvaeqError, match="--orientation-loss"):
        train(_config(orientation_loss="modulo"), tmp_path / "x.safetensors", progress=False)


def test_init_fine_tunes_a_checkpoints_networks_on_new_data(tmp_path):
    base, tuned = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"
    train(_config(epochs=2), base, progress=False, log=lambda m: None)
    # a new run: other data size and seed, its own epochs; the architecture comes from the file
    train(_config(epochs=1, n=96, seed=1, lr=1e-12, arch={}), tuned, progress=False, log=lambda m: None, init=base)
    a, b = load_checkpoint(base), load_checkpoint(tuned)
    cfg = b.meta["train_config"]
    assert b.epoch == 1 and len(b.meta["history"]) == 1 and cfg["n"] == 96 and cfg["seed"] == 1
    assert cfg["init"]["file"] == "base.safetensors" and cfg["init"]["epochs"] == 2
    assert cfg["init"]["train_config"]["n"] == 64 and cfg["arch"] == a.meta["train_config"]["arch"]
    for name, t in a.model.state_dict().items():  # a learning rate of 1e-12 leaves the weights where they started
        torch.testing.assert_close(b.model.state_dict()[name], t, rtol=0, atol=1e-9)
    # resuming the fine-tuning run keeps its record of where it started
    train(_config(epochs=2), tuned, resume=tuned, progress=False, log=lambda m: None)
    assert load_checkpoint(tuned).meta["train_config"]["init"]["file"] == "base.safetensors"


def test_init_refuses_resume_and_another_story(tmp_path, story):
    base = tmp_path / "base.safetensors"
    train(_config(), base, progress=False, log=lambda m: None)
    with pytest.raises(CvaeqError, match="give one"):
        train(_config(), tmp_path / "x.safetensors", resume=base, init=base, progress=False)
    other = tmp_path / "other.toml"
    other.write_text(story.text.replace("probs = [0.35, 0.35, 0.30]", "probs = [0.2, 0.4, 0.4]"))
    with pytest.raises(CvaeqError, match="not --story"):
        train(_config(story=str(other)), tmp_path / "x.safetensors", init=base, progress=False, log=lambda m: None)
    assert not (tmp_path / "x.safetensors").exists()


def test_time_limit_stops_after_the_first_epoch_that_uses_it_up(tmp_path):
    out = tmp_path / "m.safetensors"
    train(_config(epochs=3, time_limit=1e-9), out, progress=False, log=lambda m: None)
    assert load_checkpoint(out).epoch == 1


def test_training_data_mixes_story_and_uniform_rows_deterministically(story):
    from cvaeq.worlds.dsprites.render import render

    images, classes, _, n_story = load_training_data(story, 400, seed=3, progress=False, uniform=0.5)
    assert n_story == 200 and images.shape == (400, 64, 64) and images.dtype == np.uint8
    np.testing.assert_array_equal(classes[:200], story.sample(200, np.random.default_rng(3)))
    # uniform rows: every shape about equally often, unlike the story's squares-first scale table
    assert np.bincount(classes[200:, 0], minlength=3).min() > 40
    np.testing.assert_array_equal(images[::37], render(classes[::37]))
    again = load_training_data(story, 400, seed=3, progress=False, uniform=0.5)
    np.testing.assert_array_equal(again[1], classes)


@pytest.mark.parametrize("first,last", [(1, 1), (1, 3), (1, 28), (1, 130), (103, 130), (7, 2000)])
def test_loss_curve_labels_round_epochs_across_the_run(first, last):
    ticks = epoch_ticks(first, last)
    assert 1 <= len(ticks) <= 11
    assert all(first <= t <= last for t in ticks)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1
    assert step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    assert all(t % step == 0 for t in ticks)
    assert ticks[0] - first < step and last - ticks[-1] < step  # no stretch of the axis left unlabelled
