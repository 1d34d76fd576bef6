import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cvaeq.errors import CheckpointError
from cvaeq.model.checkpoint import export_checkpoint, load_checkpoint, save_checkpoint
from cvaeq.model.cvae import CausalVAE


@pytest.fixture
def saved(tmp_path, story, tiny_arch):
    torch.manual_seed(0)
    model = CausalVAE(tiny_arch)
    tables = {f: np.log(story.table(f)) for f in story.factors}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.zeros(4, 64, 64), torch.zeros(4, 5, dtype=torch.long)
    model.loss(x, y)[0].backward()
    opt.step()
    path = save_checkpoint(tmp_path / "m.safetensors", model, story, tables, train_config={"n": 4, "seed": 3},
                           epoch=2, history=[{"epoch": 1}], optimizer=opt)
    return path, model, opt


def test_round_trip_gives_identical_outputs(saved, story):
    path, model, opt = saved
    ckpt = load_checkpoint(path)
    assert not ckpt.model.training
    model.eval()
    x = (torch.rand(5, 64, 64) < 0.3).float()
    classes = torch.tensor([[0, 1, 2, 3, 4]] * 5)
    z = torch.randn(5, story.latent_dim)
    with torch.no_grad():
        assert torch.equal(ckpt.model.decode_probs(classes, z), model.decode_probs(classes, z))
        for f, v in ckpt.model.factor_logits(x).items():
            assert torch.equal(v, model.factor_logits(x)[f])
        assert all(torch.equal(a, b) for a, b in zip(ckpt.model.z_posterior(x, classes), model.z_posterior(x, classes)))
    assert ckpt.story.text == story.text and ckpt.epoch == 2
    assert ckpt.meta["data_seed"] == 3 and ckpt.meta["history"] == [{"epoch": 1}]
    np.testing.assert_array_equal(ckpt.factor_logits["posY"].numpy(), np.log(story.table("posY")))


def test_optimizer_state_round_trips(saved, tiny_arch):
    path, model, opt = saved
    ckpt = load_checkpoint(path)
    fresh = torch.optim.Adam(CausalVAE(tiny_arch).parameters(), lr=1e-3)
    fresh.load_state_dict(ckpt.optimizer_state)
    before, after = opt.state_dict()["state"], fresh.state_dict()["state"]
    assert sorted(before) == sorted(after) and before
    for i in before:
        a, b = before[i], after[i]
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
        assert float(a["step"]) == float(b["step"])


def test_truncated_file_is_a_checkpoint_error(saved):
    path = saved[0]
    blob = path.read_bytes()
    for cut in (4, 100, len(blob) // 2, len(blob) - 1):
        path.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match="truncated|corrupt"):
            load_checkpoint(path)


def test_foreign_files_are_checkpoint_errors(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 7 + b"PK\x03\x04 not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="not a cvaeq checkpoint|truncated"):
        load_checkpoint(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other))
    with pytest.raises(CheckpointError, match="not a cvaeq checkpoint"):
        load_checkpoint(other)
    pickle = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(pickle)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")


def _header(blob: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", blob[:8])
    return n, json.loads(blob[8 : 8 + n])


def test_tampered_weights_are_detected(saved):
    path = saved[0]
    blob = bytearray(path.read_bytes())
    n, _ = _header(bytes(blob))
    blob[8 + n + 10] ^= 0xFF  # a byte of tensor data
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_tampered_metadata_is_detected(saved):
    path = saved[0]
    blob = path.read_bytes()
    n, header = _header(blob)
    meta = json.loads(header["__metadata__"]["meta"])
    meta["epoch"] = 99
    header["__metadata__"]["meta"] = json.dumps(meta, sort_keys=True)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + n :])
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_export_drops_the_optimizer_but_keeps_the_model(saved, tmp_path):
    path, model, _ = saved
    small = export_checkpoint(path, tmp_path / "ship.safetensors")
    assert small.stat().st_size < path.stat().st_size
    a, b = load_checkpoint(path), load_checkpoint(small)
    assert b.optimizer_state is None and b.epoch == a.epoch and b.meta["history"] == a.meta["history"]
    for name, t in a.model.state_dict().items():
        assert torch.equal(b.model.state_dict()[name], t)


def test_orientation_loss_is_recorded_and_old_files_load_as_symmetric(saved, story, tiny_arch, tmp_path):
    path, model, _ = saved
    assert model.orientation_loss == "exact" and load_checkpoint(path).model.orientation_loss == "exact"
    symmetric = CausalVAE(tiny_arch, orientation_loss="symmetric")
    tables = {f: np.log(story.table(f)) for f in story.factors}
    p2 = save_checkpoint(tmp_path / "s.safetensors", symmetric, story, tables, train_config={}, epoch=1)
    assert load_checkpoint(p2).model.orientation_loss == "symmetric"
    with pytest.raises(ValueError, match="orientation_loss"):
        CausalVAE(tiny_arch, orientation_loss="modulo")


def _rewrite_meta(path, edit):
    """Rewrite a checkpoint's metadata with ``edit(meta)`` and a valid checksum (a consistent file, not tampering)."""
    from safetensors.torch import load_file

    from cvaeq.model.checkpoint import _digest

    blob = path.read_bytes()
    _, header = _header(blob)
    info = header["__metadata__"]
    meta = json.loads(info["meta"])
    edit(meta)
    tensors = load_file(str(path))
    info["meta"] = json.dumps(meta, sort_keys=True)
    info["sha256"] = _digest(tensors, info["meta"])
    save_file(tensors, str(path), metadata=info)


def test_checkpoint_records_its_world_and_family(saved):
    ckpt = load_checkpoint(saved[0])
    assert ckpt.meta["world"] == "dsprites" and ckpt.meta["family"] == "causal_vae" and ckpt.family == "causal_vae"
    assert ckpt.meta["arch"]["orientation_loss"] == "exact" and ckpt.meta["arch"]["aux_weight"] == 10.0
    # the old top-level keys stay readable
    assert ckpt.meta["orientation_loss"] == "exact" and ckpt.meta["aux_weight"] == 10.0


def test_a_recorded_world_that_is_not_the_storys_is_a_checkpoint_error(saved):
    path = saved[0]
    _rewrite_meta(path, lambda m: m.update(world="pendulum"))
    with pytest.raises(CheckpointError, match="records world 'pendulum'.*world 'dsprites'"):
        load_checkpoint(path)


def test_an_unknown_family_is_a_checkpoint_error_naming_the_known_ones(saved):
    path = saved[0]
    _rewrite_meta(path, lambda m: m.update(family="nope"))
    with pytest.raises(CheckpointError, match="unknown image-model family 'nope'.*causal_vae"):
        load_checkpoint(path)


def test_weights_of_another_shape_are_refused_before_copying(saved):
    path = saved[0]
    _rewrite_meta(path, lambda m: m["arch"].update(hidden=17))
    with pytest.raises(CheckpointError, match="do not match the recorded architecture"):
        load_checkpoint(path)


def test_a_file_written_before_worlds_and_families_loads_the_same(saved):
    path, model, _ = saved
    before = load_checkpoint(path)

    def old(meta):
        for key in ("world", "family"):
            del meta[key]
        for key in ("aux_weight", "orientation_loss"):
            del meta["arch"][key]

    _rewrite_meta(path, old)
    after = load_checkpoint(path)
    assert after.family == "causal_vae" and after.model.orientation_loss == "exact"
    x = (torch.rand(3, 64, 64) < 0.3).float()
    classes = torch.tensor([[0, 1, 2, 3, 4]] * 3)
    with torch.no_grad():
        assert torch.equal(after.model.pixel_logits(classes, torch.ones(3, 6)),
                           before.model.pixel_logits(classes, torch.ones(3, 6)))
        assert torch.equal(after.model.z_posterior(x, classes)[0], before.model.z_posterior(x, classes)[0])
