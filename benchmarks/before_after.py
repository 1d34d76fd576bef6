"""Benchmarks before and after a change, measured in one run, interleaved.

A shared machine's speed drifts from minute to minute, so two figures taken
apart in time compare the load, not the code. This script extracts the code of
an earlier commit (``git archive``, no checkout is touched) and runs each
benchmark script of ``benchmarks/`` alternately on that tree and on this one,
``--rounds`` times, the order flipping each round, with the 1-minute load
average printed beside every run. Each tree runs its own copy of the script,
so a benchmark whose imports moved still runs on both (a benchmark the earlier
commit lacks runs from this tree's copy on both, as every one does with
``--this-script``).

    python benchmarks/before_after.py --before a422ba0 [--rounds 3] [--bench factor_counterfactual image_counterfactual]

Prints each run's lines holding a median (else its last line) and, per benchmark, the
median of every number in that line over the rounds for both trees.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
DEFAULT = ("factor_counterfactual", "image_counterfactual")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def extract(commit: str, into: Path) -> Path:
    """The tree of ``commit`` under ``into`` (``git archive``, read-only use)."""
    blob = subprocess.run(["git", "-C", str(HERE), "archive", "--format=tar", commit], check=True,
                          capture_output=True).stdout
    tar = into / "tree.tar"
    tar.write_bytes(blob)
    with tarfile.open(tar) as t:
        t.extractall(into / "tree", filter="data")
    return into / "tree"


def run(tree: Path, bench: str, extra: list[str], this_script: bool = False) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "CVAEQ_LOAD_PLUGINS": "0"}  # installed plugins may not suit the old tree
    load = os.getloadavg()[0]
    script = tree / "benchmarks" / f"{bench}.py"
    if this_script or not script.exists():  # a benchmark added since: this tree's copy measures the earlier code too
        script = HERE / "benchmarks" / f"{bench}.py"
    out = subprocess.run([sys.executable, str(script), *extra], env=env,
                         capture_output=True, text=True, cwd=tree)
    if out.returncode != 0:
        return f"FAILED ({out.returncode}): {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''}", load
    lines = [ln.strip() for ln in out.stdout.strip().splitlines() if ln.strip()]
    figures = [ln for ln in lines if "median" in ln] or lines[-1:]
    return (" | ".join(figures) if figures else "(no output)"), load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="The earlier commit (sha, tag or branch).")
    ap.add_argument("--rounds", type=int, default=3, help="Alternations per benchmark (default 3).")
    ap.add_argument("--bench", nargs="+", default=list(DEFAULT), help=f"Benchmark names (default: {' '.join(DEFAULT)}).")
    ap.add_argument("--args", default="", help="Extra arguments passed to every benchmark script.")
    ap.add_argument("--this-script", action="store_true",
                    help="Run this tree's copy of each benchmark on both trees (one that prints more than the earlier copy).")
    a = ap.parse_args()
    extra = a.args.split()
    with tempfile.TemporaryDirectory() as tmp:
        before = extract(a.before, Path(tmp))
        trees = {"before": before, "after": HERE}
        print(f"before = {a.before}, after = working tree {HERE}; {os.cpu_count()} CPUs")
        for bench in a.bench:
            figures: dict[str, list[list[float]]] = {"before": [], "after": []}
            print(f"\n{bench}")
            for r in range(a.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for name in order:
                    line, load = run(trees[name], bench, extra, a.this_script)
                    print(f"  round {r + 1} {name:6} load {load:4.2f}  {line}")
                    if not line.startswith("FAILED"):
                        figures[name].append([float(x) for x in NUMBER.findall(line)])
            for name, rows in figures.items():
                if rows and all(len(row) == len(rows[0]) for row in rows):
                    med = [statistics.median(col) for col in zip(*rows)]
                    print(f"  median {name:6} " + "  ".join(f"{m:g}" for m in med))


if __name__ == "__main__":
    main()
