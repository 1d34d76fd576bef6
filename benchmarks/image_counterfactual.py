"""Benchmark: one image counterfactual, ``P(X | do(shape=square), X=img)``, 100 particles.

"Given this heart, what would it have looked like had it been a square?":
abduction from the image (q(factors | X) proposal, exact Gumbel-max and pixel
noise, q(Z | X, factors)), do(shape = square), prediction through the
decoder, as ``cvaeq query`` runs it. Prints the median wall time in ms of the
engine alone (``cvaeq.engine.infer``) and of the whole answer (parsing,
inference and the summary: sample grid, mean image, factors read off it);
target: < 200 ms on the project's 2-core CPU.

    python benchmarks/image_counterfactual.py [--model CKPT] [--particles 100] [--repeats 20] [--threads N]

Without ``--model`` the shipped checkpoint (cvaeq/weights/) is used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from cvaeq.engine import infer
from cvaeq.images import load_image
from cvaeq.query import parse
from cvaeq.query.answer import answer_query, load_mechanisms, shipped_checkpoint
from cvaeq.query.resolution import resolve

QUERY = "P(X | do(shape=square), X=img)"
IMAGE = "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"


def median_ms(fn, repeats: int) -> tuple[float, float, float]:
    fn(0)  # warm-up
    times = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        fn(seed)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the shipped one)")
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (0: torch's default; default: what cvaeq query picks, cvaeq.threads)")
    args = ap.parse_args()
    if args.threads is None:
        from cvaeq.threads import use_threads

        use_threads(None)
    elif args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or shipped_checkpoint()
    if model is None:
        sys.exit("no shipped checkpoint: pass --model CKPT (cvaeq train writes one)")

    mech = load_mechanisms(model)
    resolved = resolve(parse(QUERY), mech.story, {"img": load_image(IMAGE)})
    scm = mech.scm(with_image=True)
    evidence = {"X": torch.as_tensor(resolved.evidence["X"], dtype=torch.float32)}
    do = {f: torch.tensor(c) for f, c in resolved.interventions.items()}

    def engine(seed: int):
        with torch.no_grad():
            return infer(scm, resolved.targets, do, evidence, num_particles=args.particles, seed=seed)

    def whole(seed: int):
        return answer_query(resolved, mech, args.particles, seed)

    e_med, e_min, e_max = median_ms(engine, args.repeats)
    w_med, w_min, w_max = median_ms(whole, args.repeats)
    answer = whole(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{QUERY}, img = {IMAGE}\n{args.particles} particles, {torch.get_num_threads()} thread(s), "
        f"{args.repeats} repeats (load average {load:.1f}), model {mech.name}:"
    )
    print(f"  engine (abduction, action, prediction): median {e_med:.1f} ms   min {e_min:.1f}   max {e_max:.1f}")
    print(f"  whole answer (with its summary):         median {w_med:.1f} ms   min {w_min:.1f}   max {w_max:.1f}")
    print(f"  factors read off the mean image: {answer.predicted}   ess {answer.ess:.1f}")


if __name__ == "__main__":
    main()
