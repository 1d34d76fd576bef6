"""Orientation classes that render the same image.

A square looks the same turned by 90 degrees, an ellipse by 180, a heart only
by 360; and orientation 0 and 2*pi (the first and last of the 40 grid values,
``linspace(0, 2*pi, 40)``) are the same angle. Because the grid step is
2*pi/39, a turn by the symmetry period lands between grid values; the classes
within half a grid step of it count as the same image.

:func:`orientation_equivalence` is the ``(3, 40, 40)`` table behind it: the
classifier q(orientation | X) is trained to put its mass anywhere on a class's
equivalents, and its accuracy is counted modulo the same table.

>>> eq = orientation_equivalence()
>>> bool(eq[2, 0, 39]), bool(eq[2, 0, 20])   # heart: 0 == 2*pi only
(True, False)
>>> bool(eq[0, 0, 10])                        # square: 90 degrees ~ 10 steps
True
"""

from __future__ import annotations

import numpy as np

from .factors import SHAPES, VALUES

__all__ = ["PERIODS", "orientation_equivalence", "same_orientation"]

#: Rotational symmetry period of each shape (SHAPES order), radians.
PERIODS: tuple[float, ...] = (np.pi / 2, np.pi, 2 * np.pi)


def orientation_equivalence() -> np.ndarray:
    """``(3, 40, 40)`` bool: ``[shape, k, j]`` is True if orientation classes
    ``k`` and ``j`` give the same image of that shape (within half a grid step)."""
    theta = VALUES["orientation"]
    step = theta[1] - theta[0]
    diff = theta[:, None] - theta[None, :]
    out = np.zeros((len(SHAPES), len(theta), len(theta)), dtype=bool)
    for s, period in enumerate(PERIODS):
        d = np.abs((diff + period / 2) % period - period / 2)
        out[s] = d <= step / 2 + 1e-9
    return out


def same_orientation(shape: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Bool per row: ``predicted`` orientation class reads as ``true`` for ``shape``."""
    return orientation_equivalence()[np.asarray(shape), np.asarray(predicted), np.asarray(true)]
