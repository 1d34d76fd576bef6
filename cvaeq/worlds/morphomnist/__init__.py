"""The Morpho-MNIST world: real grey digits with a measured stroke thickness and intensity.

Morpho-MNIST (Castro et al. 2019) is the data set the image-counterfactual
literature benchmarks on (DeepSCM, Pawlowski et al. 2020; Monteiro et al.
2023; Melistas et al. 2024): MNIST digits thinned or thickened to a stroke
``thickness`` (pixels) and brightened to an ``intensity`` (the digit's grey
level), with ``thickness`` causing ``intensity`` and the ``digit`` class
independent of both. It has **no renderer**: its pictures are the labelled
files in ``data/`` (the first 8,000 Morpho-MNIST test digits, 28×28 8-bit
grey, with the README that gives their provenance and licences), so none of
its counterfactuals has a known true picture. Rows 7000-7999 are the held-out
test part (:data:`TEST_ROWS`); models train on rows 0-6999.

``thickness`` lies in ``[0, 12]`` px (the data: 0.91 to 5.88; DeepSCM's
``0.5 + Gamma(10, 5)`` exceeds 12 with probability below 1e-12) and
``intensity`` in ``[0, 255]`` (DeepSCM's mechanism gives 64 to 255).

>>> WORLD.names, WORLD.image_shape, WORLD.pixel, WORLD.has_renderer
(('digit', 'thickness', 'intensity'), (28, 28), '8bit', False)
>>> WORLD.continuous
('thickness', 'intensity')

**Its one exact counterfactual.** The data's maker (DeepSCM's
``create_synth_thickness_intensity_data.py``) set each digit's intensity last,
by scaling the thickened digit's grey levels so that their median over the
stroke (the pixels at least halfway from the picture's darkest to its
brightest level: Morpho-MNIST's measure) equals the drawn intensity, then
clipping to [0, 255] and storing as uint8. Nothing else depends on the
intensity, so :func:`set_intensity` (``WORLD.redraw["intensity"]``) applied to
a digit is the true counterfactual picture under ``do(intensity)``, up to the
last level lost to that rounding and to any level the first scaling clipped:

>>> import numpy as np
>>> digit = np.zeros((1, 28, 28), np.uint8); digit[0, 10:18, 12:15] = 120; digit[0, 9, 12:15] = 60
>>> redrawn = set_intensity(digit, np.array([240.0]))
>>> int(redrawn.max()), int(redrawn[0, 9, 12]), float(stroke_intensity(redrawn)[0])
(240, 120, 240.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...world import Factor, World

__all__ = ["WORLD", "DATA", "TEST_ROWS", "STORY_NAME", "STORY_PATH", "set_intensity", "stroke_intensity"]

#: The shipped labelled digits (Morpho-MNIST layout: IDX images and labels, ``t10k-morpho.csv``).
DATA = Path(__file__).resolve().parent / "data"
#: The held-out test part: these rows are never trained on.
TEST_ROWS = range(7000, 8000)
#: The registered name of its story (DeepSCM's SCM) and its default.
STORY_NAME = "morphomnist"
#: Its story's file: DeepSCM's SCM, stated exactly (thickness -> intensity, digit independent).
STORY_PATH = Path(__file__).resolve().parent / "morphomnist.toml"


def stroke_intensity(pictures: np.ndarray) -> np.ndarray:
    """``(N,)`` Morpho-MNIST's intensity of each picture ``(N, H, W)``: the median grey level of
    the pixels at least halfway from the picture's darkest level to its brightest."""
    flat = np.asarray(pictures, dtype=np.float64).reshape(len(pictures), -1)
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    stroke = flat >= lo + 0.5 * (hi - lo)
    return np.array([np.median(row[mask]) for row, mask in zip(flat, stroke)])


def set_intensity(pictures: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The digits ``(N, H, W)`` uint8 with their intensity set to ``values`` ``(N,)`` as the data's
    maker set it: grey levels scaled by ``value / stroke_intensity``, clipped to [0, 255] and cast
    to uint8 (truncated, as its generator stored them). A blank picture stays blank."""
    x = np.asarray(pictures, dtype=np.float64)
    now = stroke_intensity(x)
    factor = np.where(now > 0, np.asarray(values, dtype=np.float64) / np.where(now > 0, now, 1.0), 0.0)
    return np.clip(x * factor.reshape(-1, *([1] * (x.ndim - 1))), 0, 255).astype(np.uint8)


WORLD = World(
    name="morphomnist",
    factors=(
        Factor("digit", labels=tuple("0123456789")),
        Factor("thickness", low=0.0, high=12.0, unit="px"),
        Factor("intensity", low=0.0, high=255.0, unit="grey level"),
    ),
    image_shape=(28, 28),
    pixel="8bit",
    render=None,
    default_story=STORY_NAME,
    description="Morpho-MNIST: real grey digits with a measured stroke thickness and intensity (no renderer)",
    data=DATA,
    test_rows=TEST_ROWS,
    redraw={"intensity": set_intensity},
)
