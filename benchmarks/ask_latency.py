"""Benchmark: an image counterfactual as a Python user gets it, repeated ``ask(...)`` calls.

``ask("P(X | do(shape=square), X=img)", image=..., samples=100, seed=s)``
over seeds, with the shipped model named by path each time (as a script or
server calls it), beside the engine alone (``cvaeq.engine.infer`` on an SCM
built once). Prints the median wall time in ms of each, with the threads and
the load average, and the median CPU time of each (the process's, all
threads: on a shared machine it moves less with the load than wall time). Threads: ``--threads`` if given, else what ``cvaeq query``
picks (:mod:`cvaeq.threads`; on a tree without it, torch's default).
Compare two commits interleaved with::

    python benchmarks/before_after.py --before f9ffe0a --bench ask_latency --args "--threads 1"
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import time

import torch

QUERY = "P(X | do(shape=square), X=img)"
IMAGE = "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``fn(seed)`` over ``repeats`` seeds."""
    fn(0)  # warm-up
    times, cpu = [], []
    for seed in range(1, repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(seed)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    try:
        from cvaeq.threads import use_threads

        threads = use_threads(args.threads)
    except ImportError:  # a tree from before the thread policy
        if args.threads:
            torch.set_num_threads(args.threads)
        threads = torch.get_num_threads()
    from cvaeq.engine import infer
    from cvaeq.images import load_image
    from cvaeq.loading import load_mechanisms, shipped_checkpoint
    from cvaeq.query import parse
    from cvaeq.query.answer import ask
    from cvaeq.query.resolution import resolve

    path = str(shipped_checkpoint())
    mech = load_mechanisms(path)
    r = resolve(parse(QUERY), mech.story, {"img": load_image(IMAGE)})
    scm = mech.scm(with_image=True)
    evidence = {"X": torch.as_tensor(r.evidence["X"], dtype=torch.float32)}
    do = {f: torch.tensor(c) for f, c in r.interventions.items()}
    load0 = os.getloadavg()[0]
    engine = median_ms(lambda s: infer(scm, r.targets, do, evidence, num_particles=args.particles, seed=s),
                       args.repeats)
    # ask() applies its own thread policy for the call unless told the count (a tree without that
    # keyword keeps the caller's): give it the benchmark's, so both trees run on the same threads
    kw = {"threads": threads} if "threads" in inspect.signature(ask).parameters else {}
    asked = median_ms(lambda s: ask(QUERY, image=IMAGE, model=path, samples=args.particles, seed=s, **kw),
                      args.repeats)
    print(f"{QUERY}, {args.particles} particles, {threads} thread(s), {args.repeats} repeats, "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"median engine {engine[0]:.1f} ms, ask() {asked[0]:.1f} ms; CPU engine {engine[1]:.1f} ms, "
          f"ask() {asked[1]:.1f} ms")


if __name__ == "__main__":
    main()
