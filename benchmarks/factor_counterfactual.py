"""Benchmark: one factor counterfactual on the default story, 10,000 particles.

"Had this small heart been a square": evidence on all five factors, do(shape =
square), every factor a target; abduction (exact top-down Gumbel-max),
action and prediction, as ``cvaeq.engine.infer`` runs them. Prints the median
wall time in ms over the repeats (target: < 50 ms on the project's 2-core CPU).

    python benchmarks/factor_counterfactual.py [--particles 10000] [--repeats 30] [--threads 1]

One torch thread is the default: the tensors are small ([10,000, <= 40]), and on
a shared 2-core machine a second intra-op thread mostly waits; ``--threads 0``
keeps torch's own default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from cvaeq.worlds.dsprites.factors import FACTORS, parse_factors
from cvaeq.engine import infer
from cvaeq.scm import build_scm
from cvaeq.story import load_story


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    scm = build_scm(load_story("default"))
    evidence = parse_factors(["shape=heart", "scale=0.6", "orientation=0.8", "posX=0.8", "posY=0.3"])
    do = {"shape": 0}

    def run(seed: int):
        return infer(scm, FACTORS, do, evidence, args.particles, seed=seed)

    run(0)  # warm-up
    times = []
    for seed in range(args.repeats):
        t0 = time.perf_counter()
        result = run(seed)
        times.append((time.perf_counter() - t0) * 1000)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"factor counterfactual, {args.particles} particles, {torch.get_num_threads()} thread(s), "
        f"{args.repeats} repeats (load average {load:.1f}):"
    )
    print(f"  median {statistics.median(times):.1f} ms   min {min(times):.1f} ms   max {max(times):.1f} ms")
    print(f"  E[scale | do(shape=square), heart] = {result.expectation('scale'):.3f} (factual 0.6), ess {result.ess:.0f}")


if __name__ == "__main__":
    main()
