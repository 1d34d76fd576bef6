"""The pendulum's question: "had the light been further left, where would the shadow be?"

1. Render a pendulum with known factors (the light on the right, the shadow
   short, on the left), or pass your own 64×64 picture.
2. Ask the image counterfactual P(X | do(light=2), X=img) of the pendulum
   model: abduction on the picture, the light moved to x = 2, prediction
   through the decoder. The shadow is the light's effect, so it moves too.
3. Draw the true counterfactual: the story's own answer for the known
   factual factors, rendered (cvaeq.evaluation.truth), and score the model's
   mean picture against it (IoU).
4. Ask the number: E[shadow_position | do(light=2), X=img], beside the truth.

The PNGs (evidence, samples, mean, truth) go to --out. Uses the shipped
pendulum checkpoint (cvaeq/weights/pendulum.safetensors) unless --model.

    python examples/pendulum_light.py [--model CKPT] [--out pendulum_light] [--light 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cvaeq.evaluation.metrics import iou
from cvaeq.evaluation.truth import true_counterfactual
from cvaeq.loading import shipped_checkpoint
from cvaeq.query.answer import ask
from cvaeq.story import load_story
from cvaeq.viz import save_image

FACTUAL = "angle=-18,light=13.25,shadow_length=3,shadow_position=6.4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a pendulum checkpoint (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=Path("pendulum_light"))
    ap.add_argument("--light", type=float, default=2.0, help="where the light is moved to (x, 1.7 to 17.3)")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    story = load_story("pendulum")
    world = story.world
    model = args.model or shipped_checkpoint(story)
    if model is None:
        print("no pendulum model: pass --model CKPT (cvaeq train --story pendulum writes one)", file=sys.stderr)
        return 2

    factual = world.row(world.parse_factors(FACTUAL.split(",")))
    evidence = world.render_checked(factual)[0]
    query = f"P(X | do(light={args.light:g}), X=img)"
    answer = ask(query, image=evidence, model=model, samples=args.samples, seed=args.seed, out=args.out)
    light = world.snap("light", args.light)
    truth = true_counterfactual(story, factual, "light", np.array([light]), num_particles=512, seed=args.seed)
    save_image(truth.image[0], args.out / "truth.png")
    score = float(iou(answer.mean_image[None] > 0.5, truth.image)[0])
    print(f"{query}   img = {FACTUAL}")
    print(f"  model: {answer.model}   ESS {answer.ess:.1f}")
    print(f"  q(factors | X) reads off the mean picture: {answer.predicted}")
    print(f"  IoU of the mean picture with the true counterfactual: {score:.3f} "
          f"(doing nothing: {float(iou(evidence[None] > 0, truth.image)[0]):.3f})")

    number = f"E[shadow_position | do(light={args.light:g}), X=img]"
    model_e = ask(number, image=evidence, model=model, samples=args.samples, seed=args.seed).expectation
    col = world.index("shadow_position")
    true_e = world.values["shadow_position"][truth.classes[0, :, col]].mean()
    print(f"{number} = {model_e['shadow_position']:.2f}   (the truth: {true_e:.2f}; factual: "
          f"{world.label('shadow_position', factual[0, col])})")
    print(f"pictures: {', '.join(str(args.out / n) for n in ('evidence.png', 'samples.png', 'mean.png', 'truth.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
