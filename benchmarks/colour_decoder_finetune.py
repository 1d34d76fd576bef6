"""An experiment: fine-tune the colour pendulum's decoder alone on the shadows the picture's side cuts off.

The colour model's stage-1 networks (docs/weights.md: before counterfactual
training) had q(factor | X) read the intervened shadow on 0.886 / 0.947 of
the weight (``cvaeq eval``'s effectiveness), the renderer on 0.995 / 1: the
decoder hedges between the grid's hardest
shadows, those cut by the picture's side, which differ from their
neighbours by a pixel or two at one edge. This script tries the remedy
nearest to hand, without touching the reader:

* the networks of ``--init`` (the stage-1 checkpoint of docs/weights.md); q(factors | X) and the image
  trunk it reads (``patch``, ``patch_pos``, ``merge``, ``fc``,
  ``factor_head``) frozen, so the reader that scores effectiveness is the
  shipped one; the decoder and q(Z | X, factors) trained;
* the causal VAE's own loss (its ELBO and the classifier term, which with
  the reader frozen changes nothing);
* batches of 64: half drawn uniformly from the grid pictures whose
  ``shadow_position`` is 0, 1, 7 or 8 (the shadows the sides cut), half
  uniformly from the whole grid;
* Adam at ``--lr`` with a cosine decay to 0 over ``--steps`` steps; data,
  initialisation of the draws and the ELBO's Z seeded by ``--seed``.

It reads the grid file (``cvaeq data build --world colour_pendulum``, 341
MB) and writes a checkpoint, which was not shipped (``colour_cf_finetune.py``'s
counterfactual training was): score it with
``python benchmarks/colour_effectiveness.py --model OUT``.

    python benchmarks/colour_decoder_finetune.py --init BEFORE.safetensors --out /tmp/colour_decoder.safetensors
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from cvaeq.data.files import cached_grid
from cvaeq.model.checkpoint import load_checkpoint, save_checkpoint

#: Modules left as shipped: the image trunk and q(factors | X), the reader of effectiveness.
FROZEN = ("patch", "patch_pos", "merge", "fc", "factor_head")
#: The shadow positions whose shadows the picture's sides cut.
CUT = (0, 1, 7, 8)


def setup(init: str, seed: int, threads: int):
    """``(checkpoint, pictures, classes, cut rows, trainable parameters)``: the checkpoint at ``init``
    with :data:`FROZEN` frozen, the grid's pictures and classes, and the rows whose shadow the
    picture's sides cut (:data:`CUT`); torch seeded and its threads set. Shared with
    ``colour_cf_finetune.py``."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ckpt = load_checkpoint(init)
    model, world = ckpt.model, ckpt.story.world
    grid = cached_grid(world)
    if grid is None or not grid.complete:
        raise SystemExit("build the grid first: cvaeq data build --world colour_pendulum")
    pictures = grid.rows(np.arange(world.n_images))
    classes = world.classes_array_of(np.arange(world.n_images))
    cut = np.flatnonzero(np.isin(classes[:, world.index("shadow_position")], CUT))
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] not in FROZEN)
    params = [p for name, p in model.named_parameters() if name.split(".")[0] not in FROZEN]
    return ckpt, pictures, classes, cut, params


def batches(args, world, cut, opt):
    """Each step's ``(step, rows)``: the learning rate set on ``opt`` (a cosine from ``args.lr`` to 0
    over ``args.steps``) and ``args.batch`` grid rows, half of them cut shadows, seeded by
    ``args.seed``. Shared with ``colour_cf_finetune.py``."""
    rng = np.random.default_rng(args.seed)
    half = args.batch // 2
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        yield step, np.concatenate([rng.choice(cut, half), rng.integers(0, world.n_images, args.batch - half)])


def save(path: str, ckpt, key: str, recipe: dict) -> None:
    """The fine-tuned ``ckpt.model`` (put in eval mode) as a checkpoint at ``path``: ``ckpt``'s story,
    tables, history and data seed, its training config with ``recipe`` added under ``key``."""
    ckpt.model.eval()
    config = dict(ckpt.meta["train_config"], **{key: recipe})
    save_checkpoint(
        path, ckpt.model, ckpt.story, ckpt.factor_logits, family=ckpt.family, train_config=config,
        epoch=ckpt.epoch, history=ckpt.meta.get("history"), data_seed=ckpt.meta.get("data_seed"), laws=ckpt.laws,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", required=True, help="checkpoint to start from (docs/weights.md: stage 1)")
    ap.add_argument("--steps", type=int, default=15_000)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ckpt, pictures, classes, cut, params = setup(args.init, args.seed, args.threads)
    model, world = ckpt.model, ckpt.story.world
    opt = torch.optim.Adam(params, lr=args.lr)
    model.train()
    t0 = time.time()
    for step, rows in batches(args, world, cut, opt):
        loss, parts = model.loss(torch.from_numpy(pictures[rows]).float() / 255, torch.from_numpy(classes[rows]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 1000 == 0:
            print(
                f"step {step + 1}: -ELBO {parts['elbo_nats']:.0f} nats/picture, {time.time() - t0:.0f} s, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    save(args.out, ckpt, "decoder_finetune", vars(args))
    print(f"wrote {args.out} after {args.steps} steps, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
