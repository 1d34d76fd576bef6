"""Benchmark: ``cvaeq eval`` speed, seconds per test image, and the fixed TV part.

Runs :func:`cvaeq.evaluation.evaluate` on ``--n`` images with the default
particles (100) and prints the wall and CPU seconds per image (the TV score,
a fixed cost independent of ``--n``, timed apart and left out), the TV
seconds, and what ``--n 1000`` would take at that rate, with the load
average. Threads: ``--threads`` if given, else what ``cvaeq eval`` picks
(:mod:`cvaeq.threads`; on a tree without it, torch's default, as ``cvaeq
eval`` had). Compare two commits interleaved with::

    python benchmarks/before_after.py --before f9ffe0a --bench eval_speed --rounds 2 --args "--n 40"
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    try:
        from cvaeq.threads import use_threads

        threads = use_threads(args.threads)
    except ImportError:  # a tree from before the thread policy
        if args.threads:
            torch.set_num_threads(args.threads)
        threads = torch.get_num_threads()
    from cvaeq.evaluation import evaluate

    try:
        from cvaeq.evaluation import model_to_score
    except ImportError:  # a tree from before the rename (2026-12-07)
        from cvaeq.evaluation import mechanisms_to_score as model_to_score
    from cvaeq.evaluation.tv import TV_PARTICLES, tv_scores

    mech = model_to_score(args.model)
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    tv_scores(mech.story, mech.factor_logits, num_particles=TV_PARTICLES, seed=0)
    tv_wall = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    r = evaluate(mech, n=args.n, seed=0, progress=False)
    wall = time.perf_counter() - t1 - tv_wall
    cpu = time.process_time() - c1 - (c1 - c0)
    per = wall / args.n
    print(f"eval {args.n} images, {r['samples']} particles, {threads} thread(s), load average "
          f"{load0:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"per image: {per:.3f} s/image wall, {cpu / args.n:.3f} CPU-s/image, TV {tv_wall:.1f} s, "
          f"--n 1000 about {1000 * per + tv_wall:.0f} s")


if __name__ == "__main__":
    main()
