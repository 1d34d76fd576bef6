"""The pendulum world's figures: full-grid build time and memory, and image
counterfactual latency with 100 particles beside dSprites'.

1. Builds the full grid (27,783 images, ``cvaeq data build --world pendulum``)
   in a child process and prints its wall time and peak resident memory
   (interpreter and imports included).
2. Times ``P(X | do(light=2), X=img)`` on the shipped pendulum model and, in
   the same run and interleaved (one of each per round, so load hits both
   alike), ``P(X | do(shape=square), X=img)`` on the shipped dSprites model:
   the engine alone (``cvaeq.engine.infer``: abduction, action, prediction)
   and the whole answer (with its summary). Target for the pendulum: < 50 ms
   median on the project's 2-core CPU.

    python benchmarks/pendulum.py [--model CKPT] [--particles 100] [--repeats 30] [--threads 2]

The load average is printed beside the figures: these machines are shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cvaeq.engine import infer
from cvaeq.images import load_image
from cvaeq.loading import load_mechanisms, shipped_checkpoint
from cvaeq.query import parse
from cvaeq.query.answer import answer_query
from cvaeq.query.resolution import resolve
from cvaeq.story import load_story

CASES = {
    "pendulum": ("P(X | do(light=2), X=img)", "angle=-18,light=13.25,shadow_length=3,shadow_position=6.4"),
    "dsprites": ("P(X | do(shape=square), X=img)", "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"),
}

BUILD = """
import resource, sys, time
from cvaeq.data.grid import build_grid
t = time.perf_counter()
build_grid(sys.argv[1], world="pendulum", progress=False)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def load() -> float:
    return os.getloadavg()[0]


def build_figure() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pendulum.npz"
        before = load()
        done = subprocess.run([sys.executable, "-c", BUILD, str(out)], capture_output=True, text=True, check=True)
        seconds, main_kib, child_kib = (float(v) for v in done.stdout.split())
        size = out.stat().st_size / 1024**2
    return (f"full grid: 27,783 images in {seconds:.1f} s, peak memory {main_kib / 1024:.0f} MB "
            f"(largest rendering worker {child_kib / 1024:.0f} MB), file {size:.0f} MB "
            f"(load average {before:.1f} before)")


def case(name: str, model, particles: int):
    text, image = CASES[name]
    mech = load_mechanisms(model)
    resolved = resolve(parse(text), mech.story, {"img": load_image(image, mech.story.world)})
    scm = mech.scm(with_image=True)
    evidence = {"X": torch.as_tensor(resolved.evidence["X"], dtype=torch.float32)}
    do = {f: torch.tensor(c) for f, c in resolved.interventions.items()}

    def engine(seed: int):
        with torch.no_grad():
            infer(scm, resolved.targets, do, evidence, num_particles=particles, seed=seed)

    def whole(seed: int):
        answer_query(resolved, mech, particles, seed)

    return text, image, mech.name, engine, whole


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="pendulum checkpoint (default: the shipped one)")
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--no-build", action="store_true", help="skip the grid build")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.no_build:
        print(build_figure())
    pendulum = args.model or shipped_checkpoint(load_story("pendulum"))
    if pendulum is None:
        sys.exit("no shipped pendulum checkpoint: pass --model CKPT (cvaeq train --story pendulum writes one)")
    cases = {"pendulum": case("pendulum", pendulum, args.particles),
             "dsprites": case("dsprites", shipped_checkpoint(), args.particles)}
    times = {(n, part): [] for n in cases for part in ("engine", "whole")}
    for n, (_, _, _, engine, whole) in cases.items():  # warm-up
        engine(0), whole(0)
    loads = [load()]
    for seed in range(args.repeats):
        for n, (_, _, _, engine, whole) in cases.items():
            for part, fn in (("engine", engine), ("whole", whole)):
                t0 = time.perf_counter()
                fn(seed)
                times[n, part].append((time.perf_counter() - t0) * 1000)
    loads.append(load())
    print(f"{args.particles} particles, {torch.get_num_threads()} thread(s), {args.repeats} interleaved rounds, "
          f"load average {loads[0]:.1f} -> {loads[1]:.1f}")
    for n, (text, image, name, _, _) in cases.items():
        print(f"{n}: {text}, img = {image}  (model {name})")
        for part in ("engine", "whole"):
            t = times[n, part]
            print(f"  {part:6s}: median {statistics.median(t):6.1f} ms   min {min(t):6.1f}   max {max(t):6.1f}")


if __name__ == "__main__":
    main()
