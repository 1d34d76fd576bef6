"""Do cvaeq's Morpho-MNIST predictors read a true counterfactual as they read a real digit?

Morpho-MNIST has one counterfactual whose true picture is known: under
``do(intensity)`` the digit's grey levels rescaled, as the data's maker set
them (``World.redraw``, :func:`cvaeq.worlds.morphomnist.set_intensity`). This
trains the predictors twice, on the real training digits (rows 0-6999) alone
and with every digit shown once more at a shuffled intensity (what
:func:`cvaeq.evaluation.predictors.training_pictures` gives them), and prints
for each: the floor (the predictors on the 1,000 real held-out digits) and
their reading of the true ``do(intensity)`` counterfactuals of the same digits
at intensities drawn from the story (seed 0), as MAE against the SCM's values,
with 95% bootstrap intervals, and the load average. Last, what the picture alone
leaves of ``do(thickness)``'s counterfactual intensity: DeepSCM's law applied to the
factual thickness and intensity as the (second) predictors read them off each real
digit, against the law applied to the labels.

    python benchmarks/morphomnist_predictors.py
"""

from __future__ import annotations

import os

import numpy as np
import torch

from cvaeq.data.labelled import training_parts
from cvaeq.evaluation.bootstrap import mean_interval
from cvaeq.evaluation.predictors import EPOCHS, redrawn, train_predictors
from cvaeq.story import load_story


def _fig(errors: np.ndarray) -> str:
    lo, hi = mean_interval(errors, seed=0)
    return f"{errors.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    torch.set_num_threads(1)
    story = load_story("morphomnist")
    world = story.world
    parts = training_parts(world)
    train = (np.asarray(parts["train"][0]), np.asarray(parts["train"][1], dtype=np.float64))
    x, v = np.asarray(parts["test"][0]), np.asarray(parts["test"][1], dtype=np.float64)
    drawn = story.sample(len(x), np.random.default_rng([0, 0xD0]))[:, world.index("intensity")]
    truth = world.redraw_checked("intensity", x, drawn)
    print(f"load {os.getloadavg()[0]:.1f}; {len(x)} held-out digits; do(intensity) at values drawn from the story")
    for name, data in (("real digits only", train), ("with redrawn digits", redrawn(world, train))):
        pred = train_predictors(story, data, (x, v), seed=0, epochs=EPOCHS, progress=False)
        real = pred.read(x, {"intensity": v[:, 2]})
        cf = pred.read(truth, {"intensity": drawn})
        print(
            f"{name} ({len(data[0])} pictures, {EPOCHS} epochs): floor thickness {_fig(np.abs(real['thickness'] - v[:, 1]))} px, "
            f"intensity {_fig(np.abs(real['intensity'] - v[:, 2]))}; true do(intensity) counterfactuals: thickness "
            f"{_fig(np.abs(cf['thickness'] - v[:, 1]))} px, intensity {_fig(np.abs(cf['intensity'] - drawn))}, "
            f"digit {_fig((cf['digit'] == v[:, 0]).astype(float))} (floor {_fig((real['digit'] == v[:, 0]).astype(float))})"
        )
    thick = story.sample(len(x), np.random.default_rng([0, 0xD0]))[:, world.index("thickness")]
    read_i = real["intensity"]
    read_t = pred.read(x, {"intensity": read_i})["thickness"]
    off = np.abs(_law(read_t, read_i, thick) - _law(v[:, 1], v[:, 2], thick))
    print(
        f"do(thickness) at values drawn from the story: DeepSCM's counterfactual intensity from the factual "
        f"(thickness, intensity) as read off the pictures, against it from the labels: MAE {_fig(off)}"
    )


def _law(t: np.ndarray, i: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """DeepSCM's counterfactual intensity under do(thickness = t_new) of a digit with (t, i): the noise
    abducted from ``i = 64 + 191 sigmoid(0.5 e + 2 t - 5)`` and replayed."""
    u = np.clip((i - 64) / 191, 1e-6, 1 - 1e-6)
    return 64 + 191 / (1 + np.exp(-(np.log(u / (1 - u)) + 2 * (t_new - t))))


if __name__ == "__main__":
    main()
