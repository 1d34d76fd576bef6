"""Training flushes float32 denormals (a 2.5x slowdown late in training
otherwise) and leaves torch's default behind for the caller."""

import pytest
import torch

from cvaeq.model.denormals import flush_denormals


def tiny() -> float:
    return float(torch.tensor([1e-38], dtype=torch.float32) / 100)  # 1e-40: a denormal


def test_denormals_flush_inside_and_come_back_after():
    assert tiny() != 0.0
    with flush_denormals() as on:
        if not on:
            pytest.skip("this CPU cannot flush denormals")
        assert tiny() == 0.0
    assert tiny() != 0.0


def test_default_restored_after_an_error():
    with pytest.raises(RuntimeError):
        with flush_denormals():
            raise RuntimeError("boom")
    assert tiny() != 0.0
