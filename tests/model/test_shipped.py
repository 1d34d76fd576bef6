"""The shipped weights load as a causal VAE and answer bit for bit as before worlds and families."""

import hashlib

import pytest
import torch

from cvaeq.loading import shipped_checkpoint
from cvaeq.model.checkpoint import load_checkpoint

#: sha256 of the outputs for the inputs below, computed with cvaeq before the
#: model layer was made generic (commit d940747).
GOLDEN = {
    "pixel_logits": "2b26941a73fcabc8e78fab2bc856d48fe8c19aadaa2f04c8ee3f94be0a773757",
    "factor_logits": "5f181bad5e6705840984e5f34d7b80f2d33b962232d746a23351b46be3312f40",
    "z_posterior": "f4a79b0ac1c00152af2e7a7da0ae636f97cf02a87d0af6d554869100e2fa6f46",
}


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()


def test_the_shipped_checkpoint_gives_the_same_outputs_as_before():
    path = shipped_checkpoint()
    if path is None:
        pytest.skip("no shipped checkpoint installed")
    ckpt = load_checkpoint(path)
    assert ckpt.family == "causal_vae" and ckpt.story.world.name == "dsprites"
    model = ckpt.model
    g = torch.Generator().manual_seed(0)
    classes = torch.tensor([[0, 0, 0, 0, 0], [1, 5, 39, 31, 31], [2, 3, 17, 9, 22], [0, 2, 10, 16, 3]])
    z = torch.randn(4, ckpt.story.latent_dim, generator=g)
    x = (torch.rand(4, 64, 64, generator=g) < 0.2).float()
    with torch.no_grad():
        got = {
            "pixel_logits": _sha(model.pixel_logits(classes, z)),
            "factor_logits": _sha(torch.cat(list(model.factor_logits(x).values()), 1)),
            "z_posterior": _sha(torch.cat(model.z_posterior(x, classes), 1)),
        }
    assert got == GOLDEN
