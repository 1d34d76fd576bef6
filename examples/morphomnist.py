"""A real digit's question: "had this 2 been written thicker, or brighter, what would it have looked like?"

Morpho-MNIST has no renderer: its pictures are real labelled digits, so a
counterfactual has no true picture, but one: under do(intensity) the digit
redrawn as its maker set intensities (its grey levels rescaled; the world's
``redraw``). What can be checked is checked:

1. Take a held-out digit from the shipped files (row 7001 by default: never
   trained on), with its measured thickness and intensity.
2. Ask the image counterfactuals P(X | do(thickness=4.5), X=img) and
   P(X | do(intensity=250), X=img) of the shipped Morpho-MNIST model:
   abduction on the picture (each pixel's logistic noise exactly, within its
   level's bin; digit, thickness, intensity and Z weighted by the model),
   the factor set, prediction through the decoder. Intensity is thickness's
   effect in DeepSCM's SCM, so do(thickness) brightens the digit too, by the
   law's replayed noise; do(intensity) leaves the thickness alone.
   Under do(intensity=250) the true picture is drawn too, beside the model's
   mean (brighter/truth.png), with the L1 between them.
3. Read each mean picture back with the model's own q(factors | X), and draw
   two strips: the mean counterfactual picture at five thicknesses and at
   five intensities.
4. The null intervention P(X | X=img) gives the evidence back byte for byte.
5. Ask the number E[intensity | do(thickness=4), X=img], beside DeepSCM's
   closed form for the digit's measured labels,
   i' = 64 + 191 sigmoid(logit((i - 64) / 191) + 2 (4 - t)).

The PNGs go to --out. Uses the shipped checkpoint
(cvaeq/weights/morphomnist.safetensors) unless --model.

    python examples/morphomnist.py [--model CKPT] [--out morphomnist] [--row 7001] [--samples 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from cvaeq.data.labelled import load_labelled
from cvaeq.loading import shipped_checkpoint
from cvaeq.query.answer import ask
from cvaeq.story import load_story
from cvaeq.viz import save_grid, save_image

THICKNESSES = (1.0, 2.0, 3.0, 4.0, 5.0)
INTENSITIES = (80.0, 120.0, 160.0, 200.0, 250.0)


def deepscm_intensity(t: float, i: float, t_new: float) -> float:
    """DeepSCM's counterfactual intensity: the noise of (t, i) replayed at thickness ``t_new``."""
    u = math.log((i - 64) / (255 - i)) + 2 * (t_new - t)
    return 64 + 191 / (1 + math.exp(-u))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a Morpho-MNIST checkpoint (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=Path("morphomnist"))
    ap.add_argument("--row", type=int, default=7001, help="the digit's row in the shipped files (7000-7999: held out)")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    story = load_story("morphomnist")
    model = args.model or shipped_checkpoint(story)
    if model is None:
        print("no Morpho-MNIST model: pass --model CKPT (cvaeq train --story morphomnist writes one)", file=sys.stderr)
        return 2

    pics = load_labelled(None, "morphomnist")
    evidence = pics.images[pics.row(args.row)]  # uint8 (28, 28)
    labels = pics.factors_of(args.row)
    t, i = float(labels["thickness"]), float(labels["intensity"])
    print(f"row {args.row}: digit={labels['digit']} thickness={t:.3f} intensity={i:.1f}")

    def ask_(query: str, out: Path | None = None):
        return ask(query, image=evidence, model=model, samples=args.samples, seed=args.seed, out=out)

    for name, query in (
        ("thicker", "P(X | do(thickness=4.5), X=img)"),
        ("brighter", "P(X | do(intensity=250), X=img)"),
    ):
        answer = ask_(query, args.out / name)
        read = ", ".join(f"{f}={v}" for f, v in answer.predicted.items())
        print(f"{query}: ESS {answer.ess:.1f} of {args.samples}; q(factors | X) reads off the mean picture: {read}")
    truth = story.world.redraw_checked("intensity", evidence[None], [250.0])[0] / 255.0
    save_image(truth, args.out / "brighter" / "truth.png")
    l1 = float(np.abs(np.asarray(answer.mean_image, np.float64) - truth).mean())
    print(
        f"the true counterfactual under do(intensity=250), the digit redrawn as its maker set intensities: "
        f"{args.out / 'brighter' / 'truth.png'}; L1 of the model's mean picture to it {l1:.4f} "
        f"(to the evidence: {float(np.abs(np.asarray(answer.mean_image, np.float64) - evidence / 255.0).mean()):.4f})"
    )

    for factor, values in (("thickness", THICKNESSES), ("intensity", INTENSITIES)):
        means = [np.asarray(ask_(f"P(X | do({factor}={v:g}), X=img)").mean_image, np.float64) for v in values]
        save_grid(np.stack(means), args.out / f"{factor}_strip.png", columns=len(values), scale=2)
        print(
            f"mean counterfactual pictures at {factor} = {', '.join(f'{v:g}' for v in values)}: "
            f"{args.out / f'{factor}_strip.png'} (the stroke's grey level, the 99th percentile of the pixels: "
            + ", ".join(f"{255 * np.quantile(m, 0.99):.0f}" for m in means)
            + ")"
        )

    null = ask_("P(X | X=img)")
    drawn = np.asarray(null.sample_images)
    print(
        f"the null intervention P(X | X=img): {int((drawn != evidence[None]).sum())} of {drawn.size} bytes "
        "differ from the evidence"
    )

    number = "E[intensity | do(thickness=4), X=img]"
    answer = ask_(number)
    print(
        f"{number} = {answer.expectation['intensity']:.1f}   ESS {answer.ess:.1f}   (DeepSCM's closed form for "
        f"the measured labels: {deepscm_intensity(t, i, 4.0):.1f}; factual intensity {i:.1f})"
    )
    save_image(evidence / 255.0, args.out / "evidence.png")
    print(f"pictures: {args.out}/evidence.png, thicker/, brighter/, thickness_strip.png, intensity_strip.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
