
from click.testing import CliRunner
from PIL import Image

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
