"""Seed MLP CVAE vs cvaeq's causal VAE: training speed and held-out ELBO.

Both models train on the same resampled data (default story), on the same
machine, in the same run, with the same loop (Pyro ``Trace_ELBO`` loss, torch
Adam). To be fair on a shared machine they take turns in slices of a few
seconds until each has had ``--seconds`` of wall time, so both see the same
load. Reported: training images per wall-second and per CPU-second of the
process, and the held-out -ELBO of log p(X | factors) in nats per image (one
particle, averaged over 5 draws) after equal wall time.

The seed (reimplemented from its description): q(Z | X, y) is an MLP
4096+114 -> 1000 -> 1000 -> 2x50, p(X | y, Z) an MLP 50+114 -> 1000 -> 1000 ->
1000 -> 4096, softplus, Bernoulli pixels, Adam 1e-3, batch 256. Its 114
conditioning inputs are the one-hots of the six dSprites latents *including*
color (1 + 3 + 6 + 40 + 32 + 32); color is constant, so this is our 113 plus
a constant 1. It has no q(factors | X); ours trains one alongside (extra work
it still does within the same time).

    python benchmarks/seed_vs_ours.py --seconds 90 [--compete 1] [--threads N] [--seed-threads N]

``--compete N`` runs N competing CPU-bound processes (busy loops) for the
whole measurement, as a busy machine would. Ours picks its torch threads as
``cvaeq train`` does (:func:`cvaeq.threads.auto_threads`: ``CVAEQ_THREADS``,
else the CPUs this process may use, not read from the load) unless
``--threads`` says (``--threads 1`` on a busy machine); the seed keeps torch's default (one per CPU), as the seed
ran, unless ``--seed-threads`` says.

``--ours-arch`` measures other network sizes of ours (``cvaeq train --arch``
syntax); the default is the shipped model's architecture.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from torch import nn

from cvaeq.data.resample import images_for, resample
from cvaeq.model.cvae import CausalVAE
from cvaeq.model.networks import ArchConfig, onehot, parse_arch
from cvaeq.story import load_story


class SeedCVAE(nn.Module):
    """The seed's MLP CVAE (conditioned on the 114 one-hots, color included)."""

    def __init__(self, z_dim: int = 50, hidden: int = 1000):
        super().__init__()
        self.z_dim = z_dim
        self.enc = nn.Sequential(nn.Linear(4096 + 114, hidden), nn.Softplus(), nn.Linear(hidden, hidden),
                                 nn.Softplus(), nn.Linear(hidden, 2 * z_dim))
        self.dec = nn.Sequential(nn.Linear(z_dim + 114, hidden), nn.Softplus(), nn.Linear(hidden, hidden),
                                 nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, 4096))

    @staticmethod
    def cond(classes):
        return torch.cat([torch.ones(len(classes), 1), onehot(classes)], 1)

    def model(self, x, classes):
        s = x.shape[0]
        with pyro.plate("images", s):
            z = pyro.sample("Z", dist.Normal(torch.zeros(s, self.z_dim), 1.0).to_event(1))
            logits = self.dec(torch.cat([z, self.cond(classes)], 1))
            pyro.sample("X", dist.Bernoulli(logits=logits, validate_args=False).to_event(1), obs=x.reshape(s, -1))

    def guide(self, x, classes):
        s = x.shape[0]
        out = self.enc(torch.cat([x.reshape(s, -1), self.cond(classes)], 1))
        loc, raw = out.chunk(2, 1)
        with pyro.plate("images", s):
            pyro.sample("Z", dist.Normal(loc, nn.functional.softplus(raw) + 1e-4).to_event(1))

    def loss(self, x, classes):
        with pyro.validation_enabled(False):
            total = Trace_ELBO().differentiable_loss(self.model, self.guide, x, classes) / x.shape[0]
        return total, {"elbo_nats": float(total.detach())}


class Runner:
    """One model's training state, advanced a slice of wall time at a time."""

    def __init__(self, name, model, lr, batch, images, classes, seed, threads):
        self.name, self.model, self.batch, self.threads = name, model, batch, threads
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # as `cvaeq train`
        self.images, self.classes = images, classes
        self.rng = np.random.default_rng(seed)
        self.wall = self.cpu = 0.0
        self.seen = 0

    def run_for(self, seconds):
        torch.set_num_threads(self.threads)
        t0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            idx = self.rng.integers(0, len(self.classes), self.batch)
            x = torch.from_numpy(self.images[idx]).float()
            y = torch.from_numpy(self.classes[idx])
            loss, _ = self.model.loss(x, y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.seen += len(idx)
        self.wall += time.perf_counter() - t0
        self.cpu += time.process_time() - c0

    @torch.no_grad()
    def held_out(self, images, classes, draws=5):
        """-ELBO of log p(X | factors), nats/image (image part only for ours)."""
        total = 0.0
        torch.manual_seed(0)
        for _ in range(draws):
            for s in range(0, len(classes), 500):
                x = torch.from_numpy(images[s : s + 500]).float()
                y = torch.from_numpy(classes[s : s + 500])
                total += self.model.loss(x, y)[1]["elbo_nats"] * len(y)
        return total / (draws * len(classes))


def load(story, n, seed):
    r = resample(story, n, seed)
    return np.concatenate(list(images_for(r.indices))), r.classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="wall time per model")
    ap.add_argument("--slice", type=float, default=5.0, help="seconds per turn")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads of ours (default: what cvaeq train picks, cvaeq.threads.auto_threads)")
    ap.add_argument("--seed-threads", type=int, default=None,
                    help="torch threads of the seed (default: torch's, one per CPU)")
    ap.add_argument("--compete", type=int, default=0, metavar="N",
                    help="competing CPU-bound processes running during the measurement")
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--eval-n", type=int, default=2000)
    ap.add_argument("--ours-lr", type=float, default=2e-3)
    ap.add_argument("--ours-batch", type=int, default=256)
    ap.add_argument("--ours-arch", default=None, metavar="KEY=N,...",
                    help="network sizes of ours, as `cvaeq train --arch` (default: the shipped model's)")
    args = ap.parse_args()
    competitors = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.compete)]
    try:
        run(args)
    finally:
        for c in competitors:
            c.kill()
            c.wait()


def run(args) -> None:
    from cvaeq.threads import auto_threads

    seed_threads = args.seed_threads or torch.get_num_threads()
    arch = parse_arch(args.ours_arch) if args.ours_arch else {}
    story = load_story("default")
    images, classes = load(story, args.n, 0)
    eval_images, eval_classes = load(story, args.eval_n, 1)
    ours_threads = args.threads or auto_threads()  # decided now that the data are in and competitors run
    torch.manual_seed(0)
    runners = [
        Runner("seed MLP CVAE", SeedCVAE(), 1e-3, 256, images, classes, 0, seed_threads),
        Runner("cvaeq CausalVAE", CausalVAE(ArchConfig(latent_dim=story.latent_dim, **arch)), args.ours_lr,
               args.ours_batch, images, classes, 0, ours_threads),
    ]
    load0 = os.getloadavg()[0]
    while min(r.wall for r in runners) < args.seconds:
        for r in runners:
            r.run_for(min(args.slice, args.seconds - r.wall) if r.wall < args.seconds else 0)
        print(f"  {', '.join(f'{r.name}: {r.wall:.0f}s {r.seen} images' for r in runners)}", file=sys.stderr)
    print(f"\n{args.n} training images, {args.eval_n} held out; torch threads: seed {seed_threads}, ours {ours_threads}"
          f"{' (auto)' if not args.threads else ''}; {args.compete} competing process(es); "
          f"{args.seconds:g} s wall each, interleaved; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}"
          + (f"; ours with {args.ours_arch}" if arch else ""))
    print(f"{'model':<18}{'params':>10}{'img/s wall':>12}{'img/CPU-s':>11}{'images':>9}{'held-out -ELBO':>16}")
    rows = []
    for r in runners:
        params = sum(p.numel() for p in r.model.parameters())
        elbo = r.held_out(eval_images, eval_classes)
        rows.append((r.seen / r.wall, elbo))
        print(f"{r.name:<18}{params:>10,}{r.seen / r.wall:>12.0f}{r.seen / r.cpu:>11.0f}{r.seen:>9}{elbo:>16.2f}")
    print(f"speed-up {rows[1][0] / rows[0][0]:.2f}x; held-out -ELBO {rows[0][1]:.2f} -> {rows[1][1]:.2f} nats/image")


if __name__ == "__main__":
    main()
