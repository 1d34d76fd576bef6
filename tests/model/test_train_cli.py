from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import cvaeq
from cvaeq.cli import main
from cvaeq.model.checkpoint import load_checkpoint


def test_cli_trains_one_epoch_and_writes_checkpoint_and_png(tmp_path):
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--n", "300", "--epochs", "1", "--batch", "100", "--eval-n", "50",
                                    "--device", "cpu", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    ckpt = load_checkpoint(out)
    assert ckpt.epoch == 1 and ckpt.meta["train_config"]["n"] == 300
    assert "held-out -ELBO" in res.stderr
    with Image.open(tmp_path / "m.loss.png") as png:
        assert png.format == "PNG"


def test_bad_story_is_exit_2_one_line(tmp_path):
    bad = tmp_path / "story.toml"
    bad.write_text("name = 'x'\n[factors.shape]\nparents = ['nope']\n")
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--story", str(bad), "--n", "50", "--out", str(out)])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert not out.exists()


def test_broken_resume_file_is_exit_2_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    res = CliRunner().invoke(main, ["train", "--resume", str(bad), "--out", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "not a cvaeq checkpoint" in res.stderr


def test_distributed_without_torchrun_is_exit_2(tmp_path):
    res = CliRunner(env={"RANK": None, "WORLD_SIZE": None}).invoke(
        main, ["train", "--distributed", "--n", "50", "--out", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 2 and "torchrun" in res.stderr


def test_arch_sets_the_sizes_of_a_new_run(tmp_path):
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--n", "200", "--epochs", "1", "--batch", "100", "--eval-n", "20",
                                    "--device", "cpu", "--out", str(out), "--quiet",
                                    "--arch", "patch_channels=4, merge_channels=4,hidden=16,dec_channels=4,"
                                              "cell_hidden=8,dec_hidden=16"])
    assert res.exit_code == 0, res.output
    arch = load_checkpoint(out).model.config
    assert (arch.patch_channels, arch.hidden, arch.dec_hidden, arch.cell_hidden) == (4, 16, 16, 8)
    assert arch.latent_dim == 6 and arch.dec_layers == 2  # the story's, and the default


def test_arch_window_0_trains_the_full_image_networks(tmp_path):
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--n", "200", "--epochs", "1", "--batch", "100", "--eval-n", "20",
                                    "--device", "cpu", "--out", str(out), "--quiet",
                                    "--arch", "window=0,patch_channels=4,merge_channels=4,hidden=16,"
                                              "dec_channels=4,cell_hidden=8,dec_hidden=16"])
    assert res.exit_code == 0, res.output
    model = load_checkpoint(out).model
    assert model.config.window == 0 and not hasattr(model, "background")
    assert model.decode_probs(torch.tensor([[0, 1, 2, 3, 4]]), torch.zeros(1, 6)).shape == (1, 64, 64)


@pytest.mark.parametrize("arch,says", [
    ("hiden=16", "keys among"),
    ("hidden", "expected key=value pairs"),
    ("hidden=0", "hidden must be an integer >= 1"),
    ("hidden=wide", "hidden must be an integer >= 1"),
    ("latent_dim=3", "set by the story"),
    ("window=2", "window is a switch: 0 or 1"),
    ("centroid_correction=on", "centroid_correction is a switch: 0 or 1"),
    (",", "at least one"),
])
def test_bad_arch_is_exit_2_one_line(tmp_path, arch, says):
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--n", "200", "--arch", arch, "--out", str(out)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert says in res.stderr
    assert not out.exists()


@pytest.mark.parametrize("start", ["--init", "--resume"])
def test_arch_with_init_or_resume_is_refused(tmp_path, start):
    out = tmp_path / "m.safetensors"
    shipped = Path(cvaeq.__file__).parent / "weights" / "default.safetensors"
    res = CliRunner().invoke(main, ["train", start, str(shipped), "--arch", "hidden=16",
                                    "--out", str(out)])
    assert res.exit_code == 2 and "the architecture is the checkpoint's" in res.stderr
    assert not out.exists()
