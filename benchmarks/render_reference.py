"""Print how faithful and how fast the dSprites renderer is.

1. Time to render the full 737,280-image grid in 4096-image chunks (the way
   ``cvaeq data build`` does), target <= 60 s on a 2-core machine.
2. For each of the 320 real frames in the reference GIF, the best-matching
   image of the whole rendered grid by IoU: mean, minimum, exact matches
   (target: mean >= 0.95; aim: all exact).

Run: ``python benchmarks/render_reference.py [--skip-match]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cvaeq.worlds.dsprites.factors import N_IMAGES, classes_array_of, classes_of, label
from cvaeq.worlds.dsprites.reference import best_matches_full, load_frames
from cvaeq.worlds.dsprites.render import render


def time_full_grid(chunk: int = 4096) -> float:
    start = time.perf_counter()
    for lo in range(0, N_IMAGES, chunk):
        render(classes_array_of(np.arange(lo, min(lo + chunk, N_IMAGES))))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-match", action="store_true", help="only time the render")
    args = parser.parse_args()
    seconds = time_full_grid()
    print(f"full grid render: {N_IMAGES} images in 4096-image chunks: {seconds:.1f} s")
    if args.skip_match:
        return
    frames = load_frames()
    score, index = best_matches_full(frames, progress=True)
    exact = int((score == 1.0).sum())
    print(f"best-match IoU over {len(frames)} reference frames (full grid search):")
    print(f"  mean {score.mean():.4f}  min {score.min():.4f}  exact {exact}/{len(frames)}")
    for i in np.argsort(score)[:10]:
        if score[i] < 1.0:
            c = classes_of(int(index[i]))
            desc = " ".join(f"{k}={label(k, v)}" for k, v in c.items())
            print(f"  frame {i:3d}: IoU {score[i]:.4f}  best {desc}")


if __name__ == "__main__":
    main()
