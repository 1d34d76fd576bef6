"""Benchmark: ``cvaeq.levels`` against an earlier commit's, interleaved in one process.

The 8-bit pixel arithmetic of one image counterfactual on a 64×64×3 world
with 100 particles (1,228,800 pixel-channel values): the abduction of the
logistic noise with its log-probability (``abduct``), the replay under new
parents (``quantise``) and the likelihood alone (``log_prob``), on the same
inputs (the stand-in decoder's outputs of ``benchmarks/colour_counterfactual.py``),
for this tree's ``cvaeq/levels.py`` and the one of ``--before`` (read with
``git show``, no checkout touched), alternating. Prints the median CPU time
of each and the load average::

    python benchmarks/levels_speed.py [--before 9cb79d3] [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def earlier_levels(commit: str):
    """The ``cvaeq/levels.py`` of ``commit`` as a module of its own."""
    text = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{commit}:cvaeq/levels.py"], check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "levels_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("levels_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="9cb79d3", help="the earlier commit (default: levels.py as first written)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import colour_counterfactual as cc

    from cvaeq import levels as now
    from cvaeq.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    before = earlier_levels(args.before)
    model = cc.StandIn().eval().requires_grad_(False)
    n = 100
    with torch.no_grad():
        z = torch.randn(n, 2)
        loc, log_scale = model.pixel_levels(torch.stack([torch.zeros(n, dtype=torch.long), torch.full((n,), 2)], -1), z)
        loc2, log_scale2 = model.pixel_levels(torch.full((n, 2), 2, dtype=torch.long), z)
        picture = torch.as_tensor(cc.render(np.array([[0, 2]]))[0])[None]
        r = torch.rand(loc.shape)
        eps, _ = now.abduct(picture, loc, log_scale, r)
        times: dict[tuple[str, str], list[float]] = {}
        load0 = os.getloadavg()[0]
        for round_ in range(args.rounds):
            trees = (("before", before), ("now", now))
            for name, mod in trees if round_ % 2 == 0 else trees[::-1]:
                work = {"abduct": lambda: mod.abduct(picture, loc, log_scale, r),
                        "quantise": lambda: mod.quantise(loc2, log_scale2, eps),
                        "log_prob": lambda: mod.log_prob(picture, loc, log_scale)}
                for what, fn in work.items():
                    for _ in range(5):
                        t0 = time.process_time()
                        fn()
                        times.setdefault((what, name), []).append((time.process_time() - t0) * 1000)
    print(f"levels.py of {args.before} against this tree, {args.threads} thread(s), {args.rounds} rounds, "
          f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    for what in ("abduct", "quantise", "log_prob"):
        print(f"  {what:9s} median CPU: before {statistics.median(times[(what, 'before')]):.1f} ms, "
              f"now {statistics.median(times[(what, 'now')]):.1f} ms")


if __name__ == "__main__":
    main()
