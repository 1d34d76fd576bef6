"""Render dSprites images from factor classes.

PLACEHOLDER GEOMETRY: to be replaced by the faithful renderer (issue 2).
"""

from __future__ import annotations

import numpy as np

from .dsprites import FACTORS, VALUES

__all__ = ["render"]


def render(classes: np.ndarray) -> np.ndarray:
    """``(N, 64, 64)`` uint8 0/1 images of ``(N, 5)`` factor classes (FACTORS order)."""
    classes = np.asarray(classes, dtype=np.int64).reshape(-1, len(FACTORS))
    vals = np.stack([VALUES[f][classes[:, i]] for i, f in enumerate(FACTORS)], axis=1)
    c = np.arange(64) + 0.5
    yy, xx = np.meshgrid(c, c, indexing="ij")
    out = np.zeros((len(classes), 64, 64), dtype=np.uint8)
    for i, (shape, scale, theta, px, py) in enumerate(vals):
        cx, cy = 8 + px * 48, 8 + py * 48
        dx, dy = xx - cx, yy - cy
        u = (np.cos(theta) * dx + np.sin(theta) * dy) / (scale * 10)
        v = (-np.sin(theta) * dx + np.cos(theta) * dy) / (scale * 10)
        if shape == 1:
            m = (np.abs(u) <= 1) & (np.abs(v) <= 1)
        elif shape == 2:
            m = (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1
        else:
            m = (u**2 + v**2 - 1) ** 3 - u**2 * v**3 <= 0
        out[i] = m
    return out
