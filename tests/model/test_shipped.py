"""The shipped weights load as a causal VAE and answer as before worlds and families.

``tests/data/golden/shipped_outputs.npz`` holds the networks' outputs for the
inputs below, saved on the machine that recorded the SHA-256 digests the
model layer was first checked against (2026-12-06, commit 22085fe). float32
matrix products round differently from one CPU to another (the BLAS picks its
kernel by instruction set: on an Intel Xeon 3 of 16,384 pixel logits were
5.7e-5 off the recorded ones, and ``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` or
``MKL_CBWR=COMPATIBLE`` move them again), so the outputs are compared to a
tolerance argued from float32 rounding, element by element:

* Every output is made by a chain of dot products (``nn.Linear`` layers and,
  in the encoders, the image's moments: a product over all H W pixels). A dot
  product of ``n`` terms computed in float32 in any order, with or without
  fused multiply-adds, is within ``c(n) u T`` of the exact one, where
  ``u = 2**-24`` is float32's unit roundoff and ``T`` the sum of the
  absolute values of its terms (``sum |w_j a_j| + |b|``). The worst case is
  ``c(n) = n``; rounding errors of opposite signs cancel, and with
  probability at least ``1 - 2 exp(-lambda**2 / 2)`` the error is below
  ``lambda sqrt(n) u T`` (Higham and Mary, "A new approach to probabilistic
  rounding error analysis", SIAM J. Sci. Comput. 2019); ``lambda = 8`` makes
  that 1 - 3e-14 per dot product.
* Earlier layers' rounding reaches an output through the later layers as a
  relative error of their inputs, so to first order the output's error is at
  most ``lambda (sum over the chain of sqrt(n_l)) u T``, with ``T`` the last
  dot product's sum of |terms| for that element.
* The recorded values and today's are both that close to the exact ones, so
  they may differ by twice that: :func:`tolerance`.

That is 6.3e-5 T for a pixel logit (T up to about 860 here: at most 0.054)
and 1.4e-4 T for the encoders' outputs. Measured (``python
tests/model/test_shipped.py``, 2026-12-07, an Intel Xeon with AVX-512, under
the default kernels and under ``ATEN_CPU_CAPABILITY=default``,
``MKL_ENABLE_INSTRUCTIONS=AVX2``, ``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` and
``MKL_CBWR=COMPATIBLE``, each of which CI runs this test under): the worst
difference from the recorded outputs was 0.021 of the tolerance (factor
logits, 2.0e-3 off; pixel logits at most 2.4e-4, 0.0077 of it). Scaling one
layer's weights by 1.001 moves the outputs past the tolerance (the last test
below), so it still catches a change of weights or wiring.
"""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cvaeq.loading import shipped_checkpoint
from cvaeq.model.checkpoint import load_checkpoint

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "shipped_outputs.npz"
#: float32's unit roundoff
U = 2.0**-24
#: the probabilistic bound's lambda (failure probability 2 exp(-32) per dot product)
LAMBDA = 8.0

CLASSES = torch.tensor([[0, 0, 0, 0, 0], [1, 5, 39, 31, 31], [2, 3, 17, 9, 22], [0, 2, 10, 16, 3]])
OUTPUTS = {
    "pixel_logits": lambda m, z, x: m.pixel_logits(CLASSES, z),
    "factor_logits": lambda m, z, x: torch.cat(list(m.factor_logits(x).values()), 1),
    "z_posterior": lambda m, z, x: torch.cat(m.z_posterior(x, CLASSES), 1),
}
#: outputs computed from the image's moments (a dot product over every pixel) besides the Linear layers
READS_MOMENTS = {"factor_logits", "z_posterior"}


def inputs(ckpt):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, ckpt.story.latent_dim, generator=g)
    x = (torch.rand(4, 64, 64, generator=g) < 0.2).float()
    return z, x


def tolerance(model, name: str, z, x) -> torch.Tensor:
    """Per element, how far two CPUs' float32 values of output ``name`` may
    differ: ``2 lambda (sum_l sqrt(n_l)) u T`` (module docstring), computed in
    float64 with the same weights."""
    m = copy.deepcopy(model).double()
    fn = OUTPUTS[name]
    calls: list[torch.nn.Linear] = []
    hooks = [lin.register_forward_hook(lambda mod, i, o: calls.append(mod))
             for lin in m.modules() if isinstance(lin, torch.nn.Linear)]
    with torch.no_grad():
        fn(m, z.double(), x.double())
    for h in hooks:
        h.remove()
    lengths = [c.in_features for c in calls] + ([x[0].numel()] if name in READS_MOMENTS else [])
    # the same computation, with the last dot product giving its sum of |terms| in place of its value
    last = calls[-1]
    hook = last.register_forward_hook(lambda mod, i, o: i[0].abs() @ mod.weight.abs().T + mod.bias.abs())
    with torch.no_grad():
        terms = fn(m, z.double(), x.double()).abs()
    hook.remove()
    return 2 * LAMBDA * sum(math.sqrt(n) for n in lengths) * U * terms


def differences(model, z, x) -> dict[str, tuple[float, float]]:
    """``{output: (worst |today - recorded|, worst |today - recorded| / tolerance)}``."""
    out = {}
    with np.load(GOLDEN, allow_pickle=False) as golden, torch.no_grad():
        for name, fn in OUTPUTS.items():
            got = fn(model, z, x).double()
            want = torch.from_numpy(golden[name]).double()
            assert got.shape == want.shape, name
            diff = (got - want).abs()
            out[name] = (float(diff.max()), float((diff / tolerance(model, name, z, x)).max()))
    return out


@pytest.fixture(scope="module")
def shipped():
    path = shipped_checkpoint()
    if path is None:
        pytest.skip("no shipped checkpoint installed")
    ckpt = load_checkpoint(path)
    return ckpt, *inputs(ckpt)


def test_the_shipped_checkpoint_gives_the_same_outputs_as_before(shipped):
    ckpt, z, x = shipped
    assert ckpt.family == "causal_vae" and ckpt.story.world.name == "dsprites"
    for name, (worst, ratio) in differences(ckpt.model, z, x).items():
        assert ratio <= 1, f"{name}: {worst:.3g} off the recorded outputs, {ratio:.3g} x float32's rounding bound"


@pytest.mark.parametrize("name, layer", [("pixel_logits", "cell"), ("factor_logits", "factor_head"),
                                         ("z_posterior", "z_head")])
def test_the_tolerance_still_catches_a_small_change_of_weights(shipped, name, layer):
    ckpt, z, x = shipped
    model = copy.deepcopy(ckpt.model)
    with torch.no_grad():
        getattr(model, layer)[-1].weight.mul_(1.001)
        got = OUTPUTS[name](model, z, x).double()
    with np.load(GOLDEN, allow_pickle=False) as golden:
        want = torch.from_numpy(golden[name]).double()
    assert ((got - want).abs() > tolerance(ckpt.model, name, z, x)).any()


if __name__ == "__main__":  # the figures of the docstring: python tests/model/test_shipped.py
    import os

    ckpt = load_checkpoint(shipped_checkpoint())
    env = " ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("ATEN_CPU", "MKL_"))) or "default"
    for name, (worst, ratio) in differences(ckpt.model, *inputs(ckpt)).items():
        print(f"{env:32} {name:14} worst |diff| {worst:.3g}  worst diff / tolerance {ratio:.4f}")
