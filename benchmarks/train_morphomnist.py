"""Train the conv_causal_vae networks on the shipped Morpho-MNIST digits (rows 0-6999).

The stand-in for ``cvaeq train --story morphomnist --family conv_causal_vae``
while the ``morphomnist`` story (continuous factors) is not yet on main: the
networks of a model trained on a world's labelled files do not depend on the
story (the factors are observed), so they are trained here on the world alone
with the same loss, optimiser and schedule as ``cvaeq train`` (Adam, cosine
from ``lr`` to ``lr / 20`` over the time limit), and written after every
epoch as ``OUT/networks.safetensors`` (the state dict, arch and history as
metadata). :func:`cvaeq.model.conv_family.networks_checkpoint` turns them,
with a story, into a cvaeq checkpoint.

    nice python benchmarks/train_morphomnist.py --out /tmp/mm --minutes 25

Prints, per epoch, the training -ELBO, the held-out (rows 7000-7999) bits/dim,
digit accuracy, thickness and intensity MAE of q(factors | X), images/second
and the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from cvaeq.model.conv_family import ConvCausalVAEFamily, held_out_scores, save_networks
from cvaeq.model.labelled_data import labelled_split
from cvaeq.world import get_world


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    world = get_world("morphomnist")
    (xi, fi), (xt, ft) = labelled_split(world)
    torch.manual_seed(args.seed)
    model = ConvCausalVAEFamily().build(world, args.latent, {})
    model.coder.fit(fi)
    x_all = torch.from_numpy(xi).float() / 255.0
    f_all = torch.from_numpy(fi)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    t_run = time.monotonic()
    gen = torch.Generator().manual_seed(args.seed)
    steps = len(xi) // args.batch
    for epoch in range(args.epochs):
        if epoch > 0 and time.monotonic() - t_run + history[-1]["seconds"] > 60 * args.minutes:
            print(f"time limit of {args.minutes:g} min reached after epoch {epoch}", flush=True)
            break
        model.train()
        perm = torch.randperm(len(xi), generator=gen)
        t0, total, seen = time.monotonic(), 0.0, 0
        for i in range(steps):
            frac = min(max((epoch + i / steps) / args.epochs, (time.monotonic() - t_run) / (60 * args.minutes)), 1.0)
            for g in opt.param_groups:
                g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
            idx = perm[i * args.batch : (i + 1) * args.batch]
            loss, parts = model.loss(x_all[idx], f_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not math.isfinite(parts["elbo_nats"]):
                raise SystemExit(f"diverged at epoch {epoch + 1} step {i + 1}")
            opt.step()
            total += parts["elbo_nats"] * len(idx)
            seen += len(idx)
        seconds = time.monotonic() - t0
        scores = held_out_scores(model, xt, ft)
        record = {
            "epoch": epoch + 1,
            "train_elbo_nats": total / seen,
            "images_per_s": seen / seconds,
            "seconds": seconds,
            "load": os.getloadavg()[0],
            "eval": scores,
        }
        history.append(record)
        save_networks(out / "networks.safetensors", model, history)
        print(json.dumps(record), flush=True)
    np.save(out / "done.npy", np.array([len(history)]))


if __name__ == "__main__":
    main()
