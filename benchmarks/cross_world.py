"""Benchmark: cross-world queries (several worlds over one abduction).

Factor query, 10,000 particles, on the default story's true tables (target
< 50 ms): every factor in three worlds that share the noise of one factual
heart, and the probability of necessity of two of them::

    P(shape, scale, ..., scale @ do(shape=square), ..., posY @ do(shape=ellipse) | <a heart>)
    PN(shape=heart, scale=0.6; shape=square, scale=1) on the same particles

Image query, 100 particles, with the shipped model (target < 200 ms): the
heart as a square, and its factual and counterfactual shapes::

    P(X @ do(shape=square) | X=img)    and    P(shape, scale @ do(shape=square) | X=img)

Prints the median wall time in ms of the engine (:func:`cvaeq.engine.infer_scenarios`)
and of the whole answer (parsing excluded; resolution's checks, inference,
summary), with the load average: the machine is shared, so figures move with it.

    python benchmarks/cross_world.py [--particles 10000] [--image-particles 100] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from cvaeq.engine import infer_scenarios
from cvaeq.images import load_image
from cvaeq.query import parse, resolve
from cvaeq.query.answer import answer_query, load_mechanisms, shipped_checkpoint
from image_counterfactual import median_ms  # this folder is on the path when run as a script

HEART = "shape=heart, scale=0.6, orientation=0.8, posX=0.8, posY=0.3"
PN_QUERY = "PN(shape=heart, scale=0.6; shape=square, scale=1)"
IMAGE = "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"
IMAGE_QUERY = "P(X @ do(shape=square) | X=img)"
IMAGE_FACTORS = "P(shape, scale @ do(shape=square) | X=img)"




def engine_call(resolved, mech, particles: int, with_image: bool):
    scm = mech.scm(with_image)
    evidence = {v: torch.as_tensor(x, dtype=torch.float32) if v == "X" else torch.tensor(x)
                for v, x in resolved.evidence.items()}
    targets = {v.key: (v.variable, {f: torch.tensor(c) for f, c in v.scenario.items()}) for v in resolved.variables}

    def run(seed: int):
        return infer_scenarios(scm, targets, evidence, particles, seed=seed)

    return run


def report(name: str, resolved, mech, particles: int, repeats: int, with_image: bool) -> None:
    e = median_ms(engine_call(resolved, mech, particles, with_image), repeats)
    w = median_ms(lambda seed: answer_query(resolved, mech, particles, seed), repeats)
    scenarios = {tuple(sorted(v.scenario.items())) for v in resolved.variables}
    print(f"{name}\n  {len(resolved.variables)} targets in {len(scenarios)} scenarios, {particles} particles")
    for what, (med, lo, hi) in (("engine (one abduction, the actions, the predictions)", e),
                                ("whole answer (with its summary)", w)):
        print(f"  {what:<53} median {med:.1f} ms   min {lo:.1f}   max {hi:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=10_000)
    ap.add_argument("--image-particles", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--model", help="checkpoint for the image query (default: the shipped one)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"{torch.get_num_threads()} torch thread(s), {args.repeats} repeats, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (shared machine)")

    mech = load_mechanisms(None, "default")
    names = mech.story.world.names
    targets = [*names, *(f"{f} @ do(shape=square)" for f in names), *(f"{f} @ do(shape=ellipse)" for f in names)]
    query = f"P({', '.join(targets)} | {HEART})"
    report(f"factor, true tables: P(<5 factors x 3 worlds> | {HEART})", resolve(parse(query), mech.story), mech,
           args.particles, args.repeats, False)
    report(f"factor, true tables: {PN_QUERY}", resolve(parse(PN_QUERY), mech.story), mech,
           args.particles, args.repeats, False)
    pn = answer_query(resolve(parse(PN_QUERY), mech.story), mech, args.particles, 0).probability
    print(f"  {PN_QUERY} = {pn:.4f}")

    model = args.model or shipped_checkpoint()
    if model is None:
        sys.exit("no shipped checkpoint: pass --model CKPT for the image query")
    mech = load_mechanisms(model)
    image = load_image(IMAGE, mech.story.world)
    for q in (IMAGE_QUERY, IMAGE_FACTORS):
        report(f"image, model {mech.name}: {q}, img = {IMAGE}", resolve(parse(q), mech.story, {"img": image}), mech,
               args.image_particles, args.repeats, True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
