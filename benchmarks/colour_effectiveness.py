"""Where the colour pendulum's effectiveness is lost: the replayed pixel noise, the decoder, or the reader?

For ``--n`` test pictures uniform over the grid (eval's, seed 0) and each
factor's intervention (eval's values), the particles of eval's abduction
(batched, the amortised proposal) give three pictures each, all read by the
model's own q(factor | X) as ``cvaeq eval``'s effectiveness reads them:

* **sampled**: the engine's counterfactual picture (the abducted pixel noise
  replayed): ``counterfactual.effectiveness`` itself;
* **decoder**: the decoder's ``loc`` at the particle's counterfactual factors
  and its abducted Z, rounded to levels (no pixel noise);
* **decoder, prior Z**: the same at a Z drawn from its prior N(0, I) instead (seeded): how
  much of the shadow the decoder takes from Z rather than from the factors;
* **truth**: the rendered true counterfactual picture (one per test picture).

Weighted shares of particles read as the intervened value, the load average, and the
decoder's likelihood of the test pictures at their factors and q's mean Z, in bits per dimension. The sampled
pictures are also read by the renderer (``renderer``: the value whose rendered picture, the
particle's other factors held, is nearest; ``counterfactual.effectiveness_rendered``), the reading
that needs no classifier.

    python benchmarks/colour_effectiveness.py --n 60
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from cvaeq import levels as lv
from cvaeq.engine import abduct_groups, predict_groups
from cvaeq.evaluation.heldout import draw_heldout
from cvaeq.evaluation.run import intervention_values
from cvaeq.evaluation.truth import nearest_rendered
from cvaeq.image_model import ImageModelAdapter
from cvaeq.loading import load_model
from cvaeq.scm import build_scm


def decoded(model, factors: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The decoder's ``loc`` at ``(factors, z)``, rounded to levels (no pixel noise)."""
    loc, _ = model.decode(factors, z.float())
    return torch.round(loc.clamp(0, 1) * 255).to(torch.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped colour pendulum)")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mech = load_model(args.model, story=None if args.model else "colour_pendulum", image=True)
    world, names, k, n = mech.story.world, mech.story.world.names, args.samples, args.n
    model = ImageModelAdapter(mech.image_model, world.image_shape)
    scm = build_scm(mech.story, mech.factor_logits, image_model=mech.image_model)
    classes = draw_heldout(n, 0, mech.story)
    values = intervention_values(classes, 0, world)
    x = torch.from_numpy(world.render_checked(np.asarray(classes, dtype=np.int64)))
    torch.manual_seed(0)

    def read(pictures: torch.Tensor, i: int) -> np.ndarray:
        return model.factor_logits(lv.to_unit(pictures))[names[i]].argmax(-1).numpy()

    print(f"load {os.getloadavg()[0]:.1f}; {n} test pictures, {k} particles; share read as the intervened value")
    with torch.no_grad():
        z_mean, _ = model.z_posterior(lv.to_unit(x), torch.from_numpy(np.asarray(classes, dtype=np.int64)))
        loc, log_scale = model.decode(torch.from_numpy(np.asarray(classes, dtype=np.int64)), z_mean)
        nll = -lv.log_prob(x, loc, log_scale).flatten(1).sum(1).mean()
        print(f"the decoder's -log p(x | f, z = mean of q(z | x, f)): {lv.bits_per_dim(float(nll), x[0].numel()):.4f} bits/dim")
        g = abduct_groups(scm, {"X": x}, k)
        w = g.weights.numpy()
        for i, f in enumerate(names):
            v = values[f]
            out = predict_groups(g, {f: torch.from_numpy(v)})
            pictures = out["X"].reshape(n * k, *out["X"].shape[2:])
            sampled = read(pictures, i).reshape(n, k) == v[:, None]
            factors = torch.stack([out[c].reshape(n * k).long() for c in names], -1)
            rendered = nearest_rendered(world, pictures.numpy(), factors.numpy(), f).reshape(n, k) == v[:, None]
            decoder = read(decoded(model, factors, out["Z"].reshape(n * k, -1)), i).reshape(n, k) == v[:, None]
            prior_z = torch.randn(n * k, model.latent_dim, generator=torch.Generator().manual_seed(i))
            prior = read(decoded(model, factors, prior_z), i).reshape(n, k) == v[:, None]
            true = classes.copy()
            true[:, i] = v
            truth = read(torch.from_numpy(world.render_checked(true.astype(np.int64))), i) == v
            print(
                f"do({f}): sampled {(w * sampled).sum(1).mean():.3f}  decoder {(w * decoder).sum(1).mean():.3f}  "
                f"decoder, prior Z {(w * prior).sum(1).mean():.3f}  truth {truth.mean():.3f}  "
                f"sampled, read by the renderer {(w * rendered).sum(1).mean():.3f}"
            )


if __name__ == "__main__":
    main()
