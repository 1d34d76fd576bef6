"""Does the Morpho-MNIST decoder use its continuous factors? Decode held-out digits with one factor changed.

For the first ``--n`` held-out digits (rows 7000-...), Z is q(Z | X, factors)'s mean
given the digit's own labels; the digit is then decoded (the mean picture) with
``thickness`` set to each of ``--thickness`` (intensity kept), and with ``intensity``
set to each of ``--intensity`` (thickness kept). Printed per setting, averaged over
the digits: the stroke mass (sum of the mean picture's levels / 255), the bright
level (the mean of the picture's top 5% of pixels, 0..255), and what the model's
own q(factor | X) reads off the decoded picture (its thickness and intensity), and
whether q(digit | X) still reads the digit. ``--png`` writes a grid: rows are
digits; columns the evidence, then the thickness settings, then the intensity ones.

    python benchmarks/morphomnist_decoder_check.py runs/morphomnist/networks.safetensors --png /tmp/check.png
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from cvaeq.levels import mean_unit
from cvaeq.model.conv_family import load_networks
from cvaeq.model.labelled_data import labelled_split


def decoded(model, factors: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean pictures ``(S, 28, 28)`` on [0, 1]."""
    return mean_unit(*model.pixel_levels(factors, z))


def measures(model, pics: torch.Tensor, digits: torch.Tensor) -> dict[str, float]:
    levels = pics * 255.0
    flat = levels.flatten(1)
    top = flat.topk(max(1, flat.shape[1] // 20), dim=1).values.mean(1)
    normals = model.factor_normals(pics)
    kept = (model.factor_logits(pics)["digit"].argmax(-1) == digits).double().mean()
    return {
        "mass": float(pics.flatten(1).sum(1).mean()),
        "bright": float(top.mean()),
        "q_thickness": float(normals["thickness"][0].mean()),
        "q_intensity": float(normals["intensity"][0].mean()),
        "digit_kept": float(kept),
    }


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("networks")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--thickness", type=float, nargs="*", default=[1.5, 2.5, 3.5, 4.5])
    ap.add_argument("--intensity", type=float, nargs="*", default=[100.0, 150.0, 200.0, 250.0])
    ap.add_argument("--png", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_networks(args.networks)
    _, (xt, ft) = labelled_split(model.world, n_test=args.n)
    x = torch.from_numpy(xt).float() / 255.0
    f = torch.from_numpy(ft)
    z = model.z_posterior(x, f)[0]
    digits = f[:, 0].long()
    print(f"load {os.getloadavg()[0]:.1f}; {len(x)} held-out digits")
    labels = f"labels thickness {ft[:, 1].mean():.3f} intensity {ft[:, 2].mean():.1f}"
    print(f"evidence: {measures(model, x, digits)}; {labels}")
    columns = [x]
    for name, col, values in (("thickness", 1, args.thickness), ("intensity", 2, args.intensity)):
        for v in values:
            g = f.clone()
            g[:, col] = v
            pics = decoded(model, g, z)
            columns.append(pics)
            m = measures(model, pics, digits)
            print(f"do({name}={v:g}): " + ", ".join(f"{k} {val:.3f}" for k, val in m.items()))
    if args.png:
        from PIL import Image

        rows = min(8, len(x))
        grid = torch.cat([torch.cat([c[i] for c in columns], 1) for i in range(rows)], 0)
        img = (grid.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(np.kron(img, np.ones((3, 3), np.uint8))).save(args.png)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
