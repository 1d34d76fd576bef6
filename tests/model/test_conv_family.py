"""The conv_causal_vae family: small 8-bit pictures with categorical and continuous factors."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.errors import CvaeqError
from cvaeq.image_model import ImageModelAdapter
from cvaeq.model import get_family
from cvaeq.model.checkpoint import load_checkpoint
from cvaeq.model.conv_family import load_networks, networks_checkpoint, save_networks
from cvaeq.model.denormals import flush_denormals
from cvaeq.model.labelled_data import LabelledBatches, labelled_split
from cvaeq.model.train import TrainConfig, train
from cvaeq.threads import threads_for
from cvaeq.world import get_world

from .morpho_story import morpho_story  # noqa: F401  (the fixture)

SMALL = {"channels": 4, "hidden": 16}
WORLD = get_world("morphomnist")


def _quiet(message):
    pass


@pytest.fixture(scope="module")
def digits():
    (x, f), (xt, ft) = labelled_split(WORLD, n_train=64, n_test=32)
    return x, f, xt, ft


def _model(latent_dim=3, **arch):
    torch.manual_seed(0)
    return get_family("conv_causal_vae").build(WORLD, latent_dim, {**SMALL, **arch})


def test_the_family_decodes_and_encodes_the_declared_shapes(digits):
    x, f, _, _ = digits
    model = _model()
    model.standardise_factors(f)
    xs, fs = torch.from_numpy(x[:5]).float() / 255, torch.from_numpy(f[:5])
    torch.set_grad_enabled(False)
    try:
        _shapes(model, xs, fs)
    finally:
        torch.set_grad_enabled(True)


def _shapes(model, xs, fs):
    loc, log_scale = model.pixel_levels(fs, torch.randn(5, 3))
    assert loc.shape == log_scale.shape == (5, 28, 28) and loc.dtype == torch.float32
    assert float(log_scale.min()) >= -8.0 and float(log_scale.max()) <= 0.0
    logits = model.factor_logits(xs)
    assert list(logits) == ["digit"] and logits["digit"].shape == (5, 10)
    normals = model.factor_normals(xs)
    assert list(normals) == ["thickness", "intensity"]
    assert all(loc.shape == ls.shape == (5,) for loc, ls in normals.values())
    zl, zs = model.z_posterior(xs, fs)
    assert zl.shape == zs.shape == (5, 3) and bool((zs > 0).all())
    # the split encoder gives what the whole encoders give
    feats = model.features(xs)
    assert torch.equal(model.factor_logits_of(feats)["digit"], logits["digit"])
    assert torch.equal(model.factor_normals_of(feats)["intensity"][0], normals["intensity"][0])
    assert torch.equal(model.z_posterior_of(feats, fs)[0], zl)


def test_the_continuous_heads_are_normals_in_the_factors_units(digits):
    """Standardisation is undone on the way out: a head whose standardised output is
    (0, 0) reads the training mean with the training sd."""
    x, f, _, _ = digits
    model = _model()
    model.standardise_factors(f)
    with torch.no_grad():
        last = model.factor_head[-1]
        last.weight.zero_()
        last.bias.zero_()
    out = model.factor_normals(torch.zeros(2, 28, 28))
    for i, name in ((1, "thickness"), (2, "intensity")):
        loc, log_scale = out[name]
        assert torch.allclose(loc.double(), torch.tensor(f[:, i].mean()), rtol=1e-6)
        assert torch.allclose(log_scale.double().exp(), torch.tensor(f[:, i].std()), rtol=1e-5)


def test_the_adapter_passes_factor_normals_on(digits):
    x, f, _, _ = digits
    model = _model()
    adapter = ImageModelAdapter(model, WORLD.image_shape)
    assert adapter.decoder == "levels" and adapter.split and adapter.pixel == "8bit"
    one = (torch.from_numpy(x[:1]).float() / 255).expand(4, 28, 28)  # one evidence picture for 4 particles
    enc = adapter.encode(one)
    assert enc.distinct == 1
    normals = enc.factor_normals()
    direct = adapter.factor_normals(one)
    assert normals["thickness"][0].shape == (4,)
    assert torch.allclose(normals["thickness"][0], direct["thickness"][0])
    assert torch.allclose(normals["intensity"][1], direct["intensity"][1])


def test_a_few_steps_on_a_tiny_subset_lower_the_loss(digits):
    x, f, _, _ = digits
    model = _model()
    model.standardise_factors(f)
    xs, fs = torch.from_numpy(x).float() / 255, torch.from_numpy(f)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(1)
    first = None
    with flush_denormals(), threads_for(1):  # one thread: a tiny network's steps are slower on two
        for _ in range(40):
            loss, parts = model.loss(xs, fs)
            first = first if first is not None else (float(loss.detach()), parts)
            opt.zero_grad()
            loss.backward()
            opt.step()
    loss, parts = model.loss(xs, fs)
    assert float(loss.detach()) < 0.9 * first[0]  # 40 Adam steps from random weights: ~20% lower
    assert parts["elbo_nats"] < first[1]["elbo_nats"] and parts["aux_nll"] < first[1]["aux_nll"]


def test_the_pixel_kind_mismatch_is_a_one_line_error(tmp_path):
    with pytest.raises(CvaeqError, match="'conv_causal_vae' decodes 8bit pictures, and world 'dsprites' has binary"):
        train(TrainConfig(family="conv_causal_vae", n=64, device="cpu"), tmp_path / "m.safetensors",
              progress=False, log=_quiet)
    res = CliRunner().invoke(main, ["train", "--family", "conv_causal_vae", "--n", "64",
                                    "--out", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "8bit" in res.stderr
    with pytest.raises(CvaeqError, match="continuous factors .*use --family conv_causal_vae"):
        get_family("causal_vae").build(WORLD, 4, {})


def test_bad_arch_values_are_one_line_errors():
    family = get_family("conv_causal_vae")
    with pytest.raises(CvaeqError, match="unknown key 'depth'"):
        family.build(WORLD, 4, {"depth": 3})
    with pytest.raises(CvaeqError, match="channels must be an integer from 1 to 4096"):
        family.build(WORLD, 4, {"channels": 0})
    with pytest.raises(CvaeqError, match="latent_dim is set by the story"):
        family.build(WORLD, 4, {"latent_dim": 5})


def test_training_on_labelled_files_saves_and_loads(morpho_story, tmp_path):  # noqa: F811
    story = morpho_story(3)
    out = tmp_path / "mm.safetensors"
    config = TrainConfig(story=story.source, n=64, epochs=2, batch=32, eval_n=48, device="cpu", arch=dict(SMALL))
    train(config, out, progress=False, log=_quiet, threads=1)
    ckpt = load_checkpoint(out)
    assert (ckpt.family, ckpt.pixel, ckpt.channels, ckpt.epoch) == ("conv_causal_vae", "8bit", 1, 2)
    assert ckpt.story.same_as(story) and ckpt.model.latent_dim == 3
    assert ckpt.meta["arch"] == {"latent_dim": 3, **SMALL, "aux_weight": 10.0}
    # the continuous factors' scales came from the 64 training rows, and were saved and loaded
    (_, f), _ = labelled_split(WORLD, n_train=64)
    assert torch.allclose(ckpt.model.coder.mean, torch.from_numpy(f[:, 1:].mean(0)))
    # the digit's table is fitted from the labels; the continuous factors have none (the story's mechanisms)
    assert set(ckpt.factor_logits) == {"digit"} and tuple(ckpt.factor_logits["digit"].shape) == (10,)
    ev = ckpt.meta["history"][-1]["eval"]
    assert "eval_uniform" not in ckpt.meta["history"][-1]
    assert set(ev["accuracy"]) == {"digit"} and set(ev["mae"]) == {"thickness", "intensity"}
    assert 0 < ev["bits_per_dim"] < 8 and 0 <= ev["recon_l1"] <= 1
    # the loaded model decodes what the trained one did
    z = torch.zeros(2, 3)
    fs = torch.from_numpy(f[:2])
    x = torch.from_numpy(labelled_split(WORLD, n_train=2)[0][0]).float() / 255
    assert ckpt.model.pixel_levels(fs, z)[0].shape == (2, 28, 28)
    assert ckpt.model.factor_normals(x)["thickness"][0].shape == (2,)
    # resuming continues with the same family and data
    train(TrainConfig(epochs=3, device="cpu"), out, resume=out, progress=False, log=_quiet, threads=1)
    assert load_checkpoint(out).epoch == 3


def test_networks_files_round_trip_and_become_checkpoints(morpho_story, tmp_path, digits):  # noqa: F811
    x, f, _, _ = digits
    model = _model(latent_dim=3)
    model.standardise_factors(f)
    path = save_networks(tmp_path / "n.safetensors", model, [{"epoch": 1, "train_elbo_nats": 1.0, "seconds": 1.0,
                                                                "eval": {"elbo_nats": 1.0}}])
    back, meta = load_networks(path)
    assert meta["world"] == "morphomnist" and meta["family"] == "conv_causal_vae"
    for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    ckpt_path = networks_checkpoint(path, morpho_story(3), tmp_path / "c.safetensors", {"seed": 0})
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt.epoch == 1 and ckpt.family == "conv_causal_vae" and ckpt.optimizer_state is None
    with pytest.raises(Exception, match="latent_dim 5"):
        networks_checkpoint(path, morpho_story(5), tmp_path / "d.safetensors", {"seed": 0})


def test_training_holds_out_the_test_rows():
    from cvaeq.worlds.morphomnist import TEST_ROWS

    assert WORLD.test_rows == TEST_ROWS
    (x, f), (xt, ft) = labelled_split(WORLD)
    assert len(x) == 7000 and len(xt) == 1000
    (_, f_all), _ = labelled_split(WORLD, n_train=8000, n_test=0)
    assert len(f_all) == 7000  # n_train never reaches into the test rows
    assert f.dtype == np.float64 and set(np.unique(f[:, 0])) == set(range(10))


def test_labelled_batches_keep_float_factors():
    f = np.array([[1, 2.5, 100.0], [2, 3.5, 200.0], [3, 1.5, 90.0]])
    (x, y), = list(LabelledBatches(np.zeros((3, 28, 28), np.uint8), f, 2, [2, 0, 1]))
    assert y.dtype == torch.float64 and y[:, 1].tolist() == [1.5, 2.5] and x.shape == (2, 1, 28, 28)


def test_an_encoding_without_the_split_reads_factor_normals_once_per_distinct_picture():
    class Whole:  # the required members and factor_normals, no split encoder
        latent_dim, pixel = 1, "8bit"
        calls = []

        def pixel_levels(self, factors, z):
            return torch.zeros(len(z), 2, 2), torch.zeros(len(z), 2, 2)

        def factor_logits(self, x):
            return {}

        def factor_normals(self, x):
            self.calls.append(len(x))
            return {"t": (x.flatten(1).sum(1), torch.zeros(len(x)))}

        def z_posterior(self, x, factors):
            return torch.zeros(len(x), 1), torch.ones(len(x), 1)

    model = Whole()
    adapter = ImageModelAdapter(model, (2, 2))
    assert not adapter.split
    x = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]] * 3 + [[[1.0, 1.0], [1.0, 0.0]]])
    loc, log_scale = adapter.encode(x).factor_normals()["t"]
    assert loc.tolist() == [1.0, 1.0, 1.0, 3.0] and log_scale.shape == (4,) and model.calls == [2]


def test_cvaeq_train_trains_on_the_labelled_files(morpho_story, tmp_path):  # noqa: F811
    story = morpho_story(3)
    out = tmp_path / "mm.safetensors"
    res = CliRunner().invoke(main, ["train", "--story", story.source, "--n", "64", "--epochs", "1", "--batch", "32",
                                    "--eval-n", "32", "--arch", "channels=4,hidden=16", "--threads", "1",
                                    "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    assert "training data: 64 labelled pictures of world 'morphomnist'" in res.stderr
    assert "held out: 32 test pictures" in res.stderr and "bits/dim" in res.stderr and "MAE thickness=" in res.stderr
    assert load_checkpoint(out).family == "conv_causal_vae"


def test_init_starts_a_new_labelled_run_from_a_checkpoints_networks(morpho_story, tmp_path):  # noqa: F811
    story = morpho_story(3)
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    small = dict(n=64, epochs=1, batch=32, eval_n=32, device="cpu")
    train(TrainConfig(story=story.source, arch=dict(SMALL), **small), first, progress=False, log=_quiet, threads=1)
    train(TrainConfig(story=story.source, **small), second, init=first, progress=False, log=_quiet, threads=1)
    a, b = load_checkpoint(first), load_checkpoint(second)
    assert b.meta["train_config"]["init"]["file"] == "a.safetensors" and b.family == "conv_causal_vae"
    # a fine-tuning run keeps the networks' standardisation (it is part of what they learned)
    assert torch.equal(a.model.coder.mean, b.model.coder.mean) and torch.equal(a.model.coder.sd, b.model.coder.sd)
