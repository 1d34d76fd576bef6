"""Seeing versus doing: conditioning on a factor is not intervening on it.

In the default story shape causes scale (squares are built big, hearts small)
and scale and posX (which shape also moves) cause posY. So:

* P(shape | scale=1): among the big shapes, which are they? Mostly squares.
* P(shape | do(scale=1)): if we made every shape big, which would there be?
  Making a thing big does not change what it is: shape keeps its prior.
* E[posY | scale=1] vs E[posY | do(scale=1)]: posY is caused by scale, but
  also by posX, which shape moves; seeing scale=1 says "probably a square,
  so probably on the left", doing it does not — the back-door path
  scale <- shape -> posX -> posY is open for seeing and cut for doing.

Each answer is printed beside the exact value computed from the story's
tables. Runs in seconds, no trained model needed (the story's true tables):

    python examples/do_vs_see.py [--samples 20000] [--seed 0] [--model CKPT]

With --model, the checkpoint's fitted factor tables answer instead.
"""

from __future__ import annotations

import argparse

import numpy as np

from cvaeq.worlds.dsprites.factors import SHAPES, VALUES
from cvaeq.query.answer import ask
from cvaeq.story import load_story


def exact(story):
    """Exact answers by summing the story's tables."""
    p_shape = story.table("shape")                      # [3]
    p_scale = story.table("scale")                      # [3, 6]
    p_posx = story.table("posX")                        # [3, 32]
    p_posy = story.table("posY")                        # [6, 32, 32] (scale, posX, posY)
    see_shape = p_shape * p_scale[:, 5]
    see_shape /= see_shape.sum()
    e_posy = p_posy[5] @ VALUES["posY"]                 # E[posY | scale=1, posX], [32]
    do_posy = (p_shape @ p_posx) @ e_posy               # posX from its prior
    see_posy = (see_shape @ p_posx) @ e_posy            # posX from the shapes that are big
    return {"see": see_shape, "do": p_shape, "see_posy": see_posy, "do_posy": do_posy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="a checkpoint; default: the story's true tables")
    args = parser.parse_args()
    source = dict(model=args.model) if args.model else dict(story="default")
    kw = dict(samples=args.samples, seed=args.seed, **source)

    story = load_story("default")
    truth = exact(story)
    see = ask("P(shape | scale=1)", **kw)
    do = ask("P(shape | do(scale=1))", **kw)
    print("What shape is it, knowing it is big, versus having made it big?\n")
    print(f"{'shape':<8} {'P(shape | scale=1)':>20} {'exact':>7}   {'P(shape | do(scale=1))':>23} {'exact':>7}")
    for i, s in enumerate(SHAPES):
        print(f"{s:<8} {see.distribution['shape'][s]:>20.3f} {truth['see'][i]:>7.3f}   "
              f"{do.distribution['shape'][s]:>23.3f} {truth['do'][i]:>7.3f}")
    print(f"\n({see.rung}, ESS {see.ess:.0f} of {see.samples}; {do.rung}, ESS {do.ess:.0f})")

    see_y = ask("E[posY | scale=1]", **kw)
    do_y = ask("E[posY | do(scale=1)]", **kw)
    print("\nHow low does a big shape sit (posY: 0 top, 1 bottom)?\n")
    print(f"E[posY | scale=1]     = {see_y.expectation['posY']:.4f}   exact {truth['see_posy']:.4f}"
          "   (big things are mostly squares, which sit left, where the floor is lower)")
    print(f"E[posY | do(scale=1)] = {do_y.expectation['posY']:.4f}   exact {truth['do_posy']:.4f}"
          "   (made big, shapes keep their usual positions)")
    see_p = ask("P(posY | scale=1)", **kw).distribution["posY"]
    do_p = ask("P(posY | do(scale=1))", **kw).distribution["posY"]
    tv = 0.5 * sum(abs(see_p[v] - do_p[v]) for v in see_p)
    print(f"\nTotal variation between P(posY | scale=1) and P(posY | do(scale=1)): {tv:.3f}")
    print("For a cause, seeing and doing agree: P(scale | shape=heart) = P(scale | do(shape=heart)) =")
    print("  " + ", ".join(f"{v}: {p:.3f}" for v, p in ask("P(scale | shape=heart)", **kw).distribution["scale"].items()))
    print("  " + ", ".join(f"{v}: {p:.3f}" for v, p in ask("P(scale | do(shape=heart))", **kw).distribution["scale"].items()))
    print("  story row: " + ", ".join(f"{p:.3f}" for p in np.asarray(story.table("scale")[2])))


if __name__ == "__main__":
    main()
