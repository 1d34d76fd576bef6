"""Morpho-MNIST image queries with the proposal refined for the picture and with q alone.

Held-out digit 7001 (``cvaeq data show --world morphomnist --index 7001``), the README-type
questions, each asked with the refinement on and off in turn (interleaved, one thread), at
seeds 0 and 1: the ESS, the wall time and the load average beside each figure
(docs/engine.md, "Continuous factors refined with Z").

    python benchmarks/morphomnist_refinement.py
"""

from __future__ import annotations

import os
import time

from cvaeq.mechanisms import levels_image as li
from cvaeq.mechanisms.image import BernoulliImage
from cvaeq.model.labelled_data import labelled_split
from cvaeq.query.answer import ask
from cvaeq.world import get_world

QUERIES = (
    "E[intensity | do(thickness=4), X=img]",
    "E[intensity | do(thickness=4), X=img, digit=2, thickness=1.83149, intensity=99.2075]",
    "P(X | do(thickness=4), X=img)",
)
JOINT, LATENT = li.DiscretisedLogisticImage._joint_proposal, li.DiscretisedLogisticImage._latent_draw


def refine(on: bool) -> None:
    """The refinement on (as shipped) or off (q alone, as before it) for every 8-bit image mechanism."""
    li.DiscretisedLogisticImage._joint_proposal = JOINT if on else (lambda self, *a: None)
    li.DiscretisedLogisticImage._latent_draw = LATENT if on else BernoulliImage._latent_draw


def main() -> None:
    _, (pictures, _) = labelled_split(get_world("morphomnist"))
    picture = pictures[1]  # row 7001
    ask(QUERIES[1], picture, story="morphomnist", seed=0, threads=1)  # load the model once
    for seed in (0, 1):
        for query in QUERIES:
            for on in (False, True):
                refine(on)
                start = time.perf_counter()
                a = ask(query, picture, story="morphomnist", seed=seed, threads=1)
                wall = time.perf_counter() - start
                kind = "refined" if on else "q alone"
                load = os.getloadavg()[0]
                print(f"{kind:8} seed {seed} ESS {a.ess:7.1f}/{a.samples:<5} {wall:6.2f} s  load {load:.2f}  {query}")
    refine(True)


if __name__ == "__main__":
    main()
