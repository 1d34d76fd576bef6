import subprocess
import sys

import pytest

from cvaeq.model.checkpoint import load_checkpoint


@pytest.mark.slow
def test_two_process_gloo_training_writes_one_checkpoint(tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "cvaeq.cli.torchrun", "--", "--n", "96", "--epochs", "2", "--batch", "16", "--eval-n", "16",
           "--device", "cpu", "--threads", "1", "--out", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ckpt = load_checkpoint(out)
    assert ckpt.epoch == 2
    assert all(h["processes"] == 2 for h in ckpt.meta["history"])
    # rank 0 alone reports and writes
    assert res.stdout.strip().splitlines() == [str(out)]
