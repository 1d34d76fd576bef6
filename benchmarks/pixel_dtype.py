"""Benchmark: the image counterfactual's engine with float64 and float32 pixel noise, interleaved.

``infer`` on ``P(X | do(shape=square), X=img)`` (the shipped model, 100
particles) with the image mechanism's pixel noise in float64 (what queries
drew before 2026-12-07) and in float32 (the default since), one call of each
in turn with the same seed, in one process: the load of a shared machine
falls on both alike. Prints the minimum and median wall time and the median
CPU time of each, with the threads and the load average::

    python benchmarks/pixel_dtype.py --threads 1 --calls 150
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


class _Precision:
    """An image model with its pixel arithmetic set to ``dtype``."""

    def __init__(self, model, dtype):
        self.model, self.pixel_dtype = model, dtype

    def __getattr__(self, name):
        return getattr(self.model, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=150, help="calls of each, alternating")
    ap.add_argument("--particles", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from cvaeq.engine import infer
    from cvaeq.images import load_image
    from cvaeq.loading import load_mechanisms, shipped_checkpoint
    from cvaeq.query import parse
    from cvaeq.query.resolution import resolve
    from cvaeq.scm import build_scm

    query, image = "P(X | do(shape=square), X=img)", "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"
    mech = load_mechanisms(str(shipped_checkpoint()))
    r = resolve(parse(query), mech.story, {"img": load_image(image)})
    scms = {str(d).removeprefix("torch."): build_scm(mech.story, mech.factor_logits,
                                                       image_model=_Precision(mech.image_model, d))
            for d in (torch.float64, torch.float32)}
    evidence = {"X": torch.as_tensor(r.evidence["X"], dtype=torch.float32)}
    do = {f: torch.tensor(c) for f, c in r.interventions.items()}
    times: dict[str, list[tuple[float, float]]] = {d: [] for d in scms}
    load0 = os.getloadavg()[0]
    for i in range(args.calls + 5):
        for d, scm in scms.items():
            t0, c0 = time.perf_counter(), time.process_time()
            infer(scm, r.targets, do, evidence, num_particles=args.particles, seed=i)
            if i >= 5:  # the first calls warm up
                times[d].append((time.perf_counter() - t0, time.process_time() - c0))
    for d, v in times.items():
        wall, cpu = [a * 1e3 for a, _ in v], [b * 1e3 for _, b in v]
        print(f"{query}, {args.particles} particles, {args.threads} thread(s), pixel noise {d}: engine wall "
              f"min {min(wall):.1f} median {statistics.median(wall):.1f} ms, CPU median {statistics.median(cpu):.1f} ms; "
              f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
