"""The pendulum's geometry: where the pivot, rod, ball, light and shadow are.

These are the facts of the public generator of the CausalVAE pendulum data
(Yang et al., CVPR 2021), written afresh: a canvas with ``x`` in [0, 20] and
``y`` in [-1, 21] (``y`` up); a pivot at (10, 10.5); a rod of length 8 to the
centre of a ball of radius 1.5, at angle ``theta`` from the vertical
(positive: the ball swings to the right); a light of radius 3 at height 20.5,
on the line through the pivot with slope ``tan(phi)``; the shadow on the
ground ``y = -0.5``, between the projections, along that slope, of the pivot
and of the point 9.5 along the rod. Its length is ``max(3, |difference|)``
and its centre their midpoint: the shadow is a *function* of the angle and
the light, which is the causation inside the picture.

cvaeq names the light by its ``x`` position (:func:`light_x`), which
determines ``phi`` (``cot(phi) = (x - 10) / 10``); so every law below takes
the light's position.

>>> round(float(light_x(60 * math.pi / 200)), 3), round(float(light_x(140 * math.pi / 200)), 3)
(17.265, 2.735)
>>> length, centre = shadow(0.0, light=10.0)    # light straight above: the shadow is the rod's foot
>>> float(length), float(centre)
(3.0, 10.0)
>>> bool(shadow(0.0, light=2.0)[1] > 10)         # light on the left: the shadow falls to the right
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "X_RANGE",
    "Y_RANGE",
    "PIVOT",
    "ROD",
    "BALL_RADIUS",
    "LIGHT_Y",
    "LIGHT_RADIUS",
    "GROUND",
    "SHADOW_REACH",
    "MIN_SHADOW",
    "light_x",
    "ball_centre",
    "ground_projection",
    "shadow",
    "shadow_length",
    "shadow_position",
]

#: The canvas: x from 0 to 20, y from -1 (bottom) to 21 (top).
X_RANGE = (0.0, 20.0)
Y_RANGE = (-1.0, 21.0)
#: The pivot, the rod's length to the ball's centre, and the ball's radius.
PIVOT = (10.0, 10.5)
ROD = 8.0
BALL_RADIUS = 1.5
#: The light's height and radius.
LIGHT_Y = 20.5
LIGHT_RADIUS = 3.0
#: The ground the shadow lies on, how far along the rod the shadow's far end is cast from, its least length.
GROUND = -0.5
SHADOW_REACH = 9.5
MIN_SHADOW = 3.0


def light_x(phi: float | np.ndarray) -> float | np.ndarray:
    """The light's ``x`` for light angle ``phi`` (radians; ``phi = pi/2`` is straight above the pivot)."""
    return PIVOT[0] + (LIGHT_Y - PIVOT[1]) / np.tan(phi)


def ball_centre(theta: float | np.ndarray, reach: float = ROD) -> tuple[Any, Any]:
    """``(x, y)`` of the point ``reach`` along the rod at angle ``theta`` (radians from the vertical)."""
    return PIVOT[0] + reach * np.sin(theta), PIVOT[1] - reach * np.cos(theta)


def ground_projection(x, y, light):
    """Where the point ``(x, y)`` falls on the ground along the light's slope (light at ``x = light``)."""
    cot = (np.asarray(light, dtype=np.float64) - PIVOT[0]) / (LIGHT_Y - PIVOT[1])
    return x - (y - GROUND) * cot


def shadow(theta, light) -> tuple[np.ndarray, np.ndarray]:
    """``(length, centre)`` of the shadow for pendulum angle ``theta`` (radians) and light position ``light``."""
    x0 = ground_projection(*PIVOT, light)
    x1 = ground_projection(*ball_centre(theta, SHADOW_REACH), light)
    return np.maximum(MIN_SHADOW, np.abs(x1 - x0)), (x0 + x1) / 2


def shadow_length(angle: float, light: float) -> float:
    """The law of the shadow's length: ``angle`` in degrees, ``light`` the light's ``x``."""
    return float(shadow(math.radians(angle), light)[0])


def shadow_position(angle: float, light: float) -> float:
    """The law of the shadow's centre: ``angle`` in degrees, ``light`` the light's ``x``."""
    return float(shadow(math.radians(angle), light)[1])
