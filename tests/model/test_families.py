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
