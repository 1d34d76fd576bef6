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
"""

from __future__ import annotations

from pathlib import Path

from ...world import Factor, World

__all__ = ["WORLD", "DATA", "TEST_ROWS", "STORY_NAME", "STORY_PATH"]

#: The shipped labelled digits (Morpho-MNIST layout: IDX images and labels, ``t10k-morpho.csv``).
DATA = Path(__file__).resolve().parent / "data"
#: The held-out test part: these rows are never trained on.
TEST_ROWS = range(7000, 8000)
#: The registered name of its story (DeepSCM's SCM) and its default.
STORY_NAME = "morphomnist"
#: Its story's file: DeepSCM's SCM, stated exactly (thickness -> intensity, digit independent).
STORY_PATH = Path(__file__).resolve().parent / "morphomnist.toml"

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
)
