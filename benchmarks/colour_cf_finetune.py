"""Counterfactual training of the colour pendulum's decoder: its replayed counterfactuals read right by a frozen q.

With the colour model's stage-1 networks (docs/weights.md), q(factor | X)
read the intervened shadow on 0.886 / 0.947 of the weight (``cvaeq eval``'s
effectiveness), the renderer on 0.995 / 1; this training, the shipped
model's second stage, took them to 0.971 / 0.986 and 1 / 1. Part of the loss is the decoder's hedged
edge of a shadow the picture's side cuts (``colour_decoder_finetune.py``
sharpens it), part the replayed pixel noise: where the factual shadow is
drawn a little off, its noise lies in a logistic's tail and, replayed under
the new shadow, leaves a faint copy of the old one.

Ribeiro et al. (ICML 2023, "High fidelity image counterfactuals with
probabilistic causal models", biomedia-mira/causal-gen's
``train_cf.py``) fine-tune a model's decoder so that frozen anti-causal
predictors read its counterfactuals as the parents they were given; this is
that "counterfactual training" for cvaeq's mechanism:

* q(factors | X) and its image trunk (``patch``, ``patch_pos``, ``merge``,
  ``fc``, ``factor_head``) frozen: the reader of ``cvaeq eval``'s
  effectiveness is the shipped one; the decoder and q(Z | X, factors) train;
* each step's loss is the causal VAE's own (its ELBO) plus ``--cf-weight``
  times the cross-entropy of the frozen reader on a counterfactual of each
  picture of the batch: Z drawn from q(Z | X, factors); each pixel's noise
  drawn from the standard logistic cut to its level's bin under the factual
  decoder (the engine's abduction, ``cvaeq.levels.abduct``; the draw is
  reparameterised, so the factual decoder is trained by it too); one factor
  set to another class (``shadow_length`` and ``shadow_position`` each with
  probability 0.35, ``angle`` and ``light`` 0.15); the noise replayed under
  the new factors (``loc + s eps``, rounded to levels with a straight-through
  gradient), every factor of the new world scored;
* batches of ``--batch`` pictures from the grid, half of them shadows the
  picture's sides cut (``shadow_position`` 0, 1, 7 or 8), half uniform;
* Adam at ``--lr``, a cosine to 0 over ``--steps``; everything seeded by
  ``--seed``.

The renderer is never used for training beyond the grid's pictures (the
observational data every model of this world sees); it stays an
independent judge: ``benchmarks/colour_effectiveness.py --model OUT``
reads the counterfactuals with q and with the renderer, and ``cvaeq eval``
scores them against the true counterfactuals (L1, PSNR).

    python benchmarks/colour_cf_finetune.py --init before.safetensors --out cvaeq/weights/colour_pendulum.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colour_decoder_finetune import batches, save, setup  # noqa: E402  (the reader frozen, the grid, the cut shadows)

#: How often each factor is the one intervened on (the world's order: angle, light, shadow_length, shadow_position).
INTERVENE = (0.15, 0.15, 0.35, 0.35)
#: Standardised bin edges are clamped here: a pixel's noise lies within 15 logistic units of its centre.
EDGE = 15.0


def replayed_counterfactual(model, x: torch.Tensor, classes: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``(S, C, H, W)`` counterfactual pictures on [0, 1] of ``x`` at ``new`` factors, differentiable.

    The engine's counterfactual in reparameterised form: Z from q(Z | X,
    factors), each pixel's logistic noise cut to its observed level's bin
    under the factual decoder, replayed under the decoder at ``new``.
    """
    feats = model.features(x)
    z_loc, z_scale = model.z_params(feats, model.onehot(classes))
    z = z_loc + z_scale * torch.randn_like(z_loc)
    loc, log_scale = model.level_blocks(classes, z)
    levels = torch.round(model.to_level_blocks(x) * 255.0)
    scale = log_scale.exp()
    a = (((levels - 0.5) / 255.0 - loc) / scale).clamp(-EDGE, EDGE)
    b = (((levels + 0.5) / 255.0 - loc) / scale).clamp(-EDGE, EDGE)
    a = torch.where(levels == 0, torch.full_like(a, -EDGE), a)
    b = torch.where(levels == 255, torch.full_like(b, EDGE), b)
    sa, sb = torch.sigmoid(a), torch.sigmoid(b)
    u = (sa + torch.rand_like(sa) * (sb - sa)).clamp(1e-7, 1 - 1e-7)
    eps = torch.log(u) - torch.log1p(-u)
    loc_cf, log_scale_cf = model.level_blocks(new, z)
    value = (loc_cf + log_scale_cf.exp() * eps).clamp(0.0, 1.0)
    value = value + (torch.round(value * 255.0) / 255.0 - value).detach()
    return model.from_level_blocks(value)


def intervene(classes: torch.Tensor, sizes: list[int], gen: torch.Generator) -> torch.Tensor:
    """``classes`` with one factor per row (drawn by :data:`INTERVENE`) set to another of its classes."""
    s = classes.shape[0]
    which = torch.multinomial(torch.tensor(INTERVENE), s, replacement=True, generator=gen)
    new = classes.clone()
    for j, size in enumerate(sizes):
        rows = which == j
        shift = torch.randint(1, size, (int(rows.sum()),), generator=gen)
        new[rows, j] = (classes[rows, j] + shift) % size
    return new


def cf_loss(model, x: torch.Tensor, classes: torch.Tensor, names, sizes, gen) -> torch.Tensor:
    """Mean over the batch of the frozen reader's cross-entropy, summed over factors, on the counterfactuals."""
    new = intervene(classes, sizes, gen)
    logits = model.factor_logits(replayed_counterfactual(model, x, classes, new))
    return sum(F.cross_entropy(logits[f], new[:, j]) for j, f in enumerate(names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", required=True,
                    help="checkpoint to start from (docs/weights.md: the networks before this training)")
    ap.add_argument("--steps", type=int, default=3_000)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cf-weight", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ckpt, pictures, classes, cut, params = setup(args.init, args.seed, args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    model, world = ckpt.model, ckpt.story.world
    names = list(world.names)
    sizes = [len(world.factor(f).values) for f in names]
    opt = torch.optim.Adam(params, lr=args.lr)
    model.train()
    t0, seen = time.time(), []
    for step, rows in batches(args, world, cut, opt):
        x, c = torch.from_numpy(pictures[rows]).float() / 255, torch.from_numpy(classes[rows]).long()
        loss, parts = model.loss(x, c)
        ce = cf_loss(model, x, c, names, sizes, gen)
        opt.zero_grad()
        (loss + args.cf_weight * ce).backward()
        opt.step()
        seen.append((parts["elbo_nats"], float(ce.detach())))
        if (step + 1) % 250 == 0:
            elbo, cfce = np.mean(seen, axis=0)
            seen = []
            print(
                f"step {step + 1}: -ELBO {elbo:.0f} nats/picture, counterfactual CE {cfce:.3f} nats, "
                f"{time.time() - t0:.0f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    save(args.out, ckpt, "cf_finetune", {k: v for k, v in vars(args).items() if k not in ("out", "init")})
    print(f"wrote {args.out} after {args.steps} steps, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
