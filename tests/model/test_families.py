"""Training is generic over the image-model family and the world."""

import pytest
import torch
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.errors import CvaeqError
from cvaeq.model.checkpoint import load_checkpoint
from cvaeq.model.train import TrainConfig, train

from .toy import MLPModel


def _quiet(message):
    pass


def test_a_plugin_family_trains_on_dsprites_and_loads_back(toy_plugin, tmp_path):
    out = tmp_path / "mlp.safetensors"
    train(TrainConfig(family="test_mlp", n=64, epochs=2, batch=16, eval_n=16, device="cpu", arch={"hidden": 8}),
          out, progress=False, log=_quiet)
    ckpt = load_checkpoint(out)
    assert ckpt.family == "test_mlp" and ckpt.meta["world"] == "dsprites" and ckpt.meta["arch"] == {"hidden": 8}
    assert isinstance(ckpt.model, MLPModel) and ckpt.model.hidden == 8
    ev = ckpt.meta["history"][-1]["eval_uniform"]
    assert set(ev["accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    assert 0 <= ev["orientation_exact"] <= ev["accuracy"]["orientation"] <= 1 and "aux_nll" not in ev
    # resuming continues with the checkpoint's family
    train(TrainConfig(n=64, epochs=3, device="cpu"), out, resume=out, progress=False, log=_quiet)
    assert load_checkpoint(out).epoch == 3 and load_checkpoint(out).family == "test_mlp"


def test_an_unknown_family_is_a_one_line_error_listing_the_registered_ones(tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(CvaeqError, match="unknown image-model family 'nope'; known: causal_vae"):
        train(TrainConfig(family="nope", n=64, device="cpu"), out, progress=False, log=_quiet)
    res = CliRunner().invoke(main, ["train", "--family", "nope", "--n", "64", "--out", str(out)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "causal_vae" in res.stderr
    assert not out.exists()


def test_a_familys_build_checks_its_own_arch(toy_plugin, tmp_path):
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--family", "test_mlp", "--arch", "dec_hidden=3", "--n", "64",
                                    "--out", str(out)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "only hidden" in res.stderr
    assert not out.exists()


def test_the_causal_vae_trains_on_a_plugin_world_and_loads_back(toy_plugin, tmp_path):
    from .conftest import TINY

    out = tmp_path / "bars.safetensors"
    config = TrainConfig(story=str(toy_plugin), n=96, epochs=2, batch=16, eval_n=16, device="cpu", arch=dict(TINY),
                         orientation_loss="symmetric")
    train(config, out, progress=False, log=_quiet)
    ckpt = load_checkpoint(out)
    assert ckpt.meta["world"] == "bars" and ckpt.family == "causal_vae" and ckpt.story.world.name == "bars"
    model = ckpt.model
    assert type(model).__name__ == "WindowCausalVAE" and model.window_shape == (16, 16) and model.strides == (5, 5)
    assert {f: t.shape for f, t in ckpt.factor_logits.items()} == {
        "kind": (2,), "length": (2, 3), "row": (4,), "col": (4, 4)}
    ev = ckpt.meta["history"][-1]["eval_uniform"]
    assert set(ev["accuracy"]) == {"kind", "length", "row", "col"} and 0 <= ev["recon_iou"] <= 1
    classes = torch.tensor([[0, 2, 1, 3], [1, 0, 3, 0]])
    with torch.no_grad():
        logits = model.pixel_logits(classes, torch.zeros(2, 2))
        assert logits.shape == (2, 32, 32)
        assert sorted(model.factor_logits(torch.zeros(2, 32, 32))) == ["col", "kind", "length", "row"]
    # the full-image networks build for the same world
    train(TrainConfig(story=str(toy_plugin), n=64, epochs=1, batch=16, eval_n=16, device="cpu",
                      arch={**TINY, "window": 0}), tmp_path / "full.safetensors", progress=False, log=_quiet)
    assert load_checkpoint(tmp_path / "full.safetensors").model.image_shape == (32, 32)


def test_image_sides_that_are_not_multiples_of_16_are_a_clear_error():
    import numpy as np

    from cvaeq.model.causal_vae import CausalVAEFamily
    from cvaeq.world import Factor, World

    odd = World("odd", (Factor("x", values=[0.0, 1.0]),), image_shape=(20, 20),
                render=lambda c: np.zeros((len(c), 20, 20), np.uint8))
    with pytest.raises(CvaeqError, match="multiples of 16.*20x20"):
        CausalVAEFamily().build(odd, 2, {})
    with pytest.raises(CvaeqError, match="window=1 needs two position factors"):
        CausalVAEFamily().build(World("flat", odd.factors, (32, 32), odd.render), 2, {"window": 1})


def test_an_arch_too_large_to_allocate_is_refused_before_allocating():
    from cvaeq.model.causal_vae import CausalVAEFamily
    from cvaeq.world import get_world

    with pytest.raises(CvaeqError, match="parameters, more than"):
        CausalVAEFamily().build(get_world("dsprites"), 6, {"hidden": 65536, "dec_hidden": 65536})
