"""The scores evaluation reports: IoU of binary images, factor accuracy with
orientation counted modulo each shape's symmetry, total variation.

Orientation: a square looks the same turned by pi/2, an ellipse by pi, a
heart only by 2*pi, and the grid is ``linspace(0, 2*pi, 40)`` (step 2*pi/39,
so 0 and 2*pi are the same angle). A predicted orientation class counts as
correct when its angular distance to the true one, modulo the shape's period,
is at most half a grid step. "At most", not "below": the ellipse's period
(pi = 19.5 steps) falls exactly half-way between two grid classes, and with a
strict inequality no turned ellipse would ever match. The table is the one
the model's classifier is trained against
(:func:`cvaeq.worlds.dsprites.symmetry.orientation_equivalence`).

>>> import numpy as np
>>> a = np.zeros((1, 4, 4), bool); a[0, :2] = True
>>> b = np.zeros((1, 4, 4), bool); b[0, 1:3] = True
>>> iou(a, b).tolist()
[0.3333333333333333]
>>> bool(orientation_correct(np.array([1]), np.array([20]), np.array([0]))[0])   # ellipse turned by pi
True
>>> total_variation({0: 0.5, 1: 0.5}, {0: 1.0})
0.5
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..worlds.dsprites.factors import FACTORS
from ..worlds.dsprites.symmetry import orientation_equivalence

__all__ = ["iou", "soft_iou", "binarise", "orientation_correct", "factor_correct", "total_variation", "THRESHOLD"]

#: Pixel probability above which a mean image counts as "on".
THRESHOLD = 0.5

_EQUIVALENCE = orientation_equivalence()


def binarise(probs, threshold: float = THRESHOLD) -> np.ndarray:
    """Bool images: pixel mean (or probability) strictly above ``threshold``."""
    return np.asarray(probs) > threshold


def iou(a, b) -> np.ndarray:
    """``(N,)`` intersection over union of two stacks of binary images ``(N, H, W)``.

    Two empty images agree perfectly (IoU 1).
    """
    a = np.asarray(a).astype(bool).reshape(len(a), -1)
    b = np.asarray(b).astype(bool).reshape(len(b), -1)
    inter = (a & b).sum(1)
    union = (a | b).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def soft_iou(a, b) -> np.ndarray:
    """``(N,)`` weighted Jaccard similarity of two stacks of mean images in [0, 1]:
    ``sum(min(a, b)) / sum(max(a, b))`` (1 for two empty images).

    On binary images it is :func:`iou`; on mean images (pixel marginals of a
    counterfactual answer) it compares the answers without a threshold.
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    lo = np.minimum(a, b).sum(1)
    hi = np.maximum(a, b).sum(1)
    return np.where(hi == 0, 1.0, lo / np.where(hi == 0, 1.0, hi))


def orientation_correct(shape, predicted, true) -> np.ndarray:
    """Bool per row: orientation class ``predicted`` renders like ``true`` for ``shape``."""
    return _EQUIVALENCE[np.asarray(shape), np.asarray(predicted), np.asarray(true)]


def factor_correct(factor: str, predicted, true, shape=None) -> np.ndarray:
    """Bool per row: ``predicted`` class of ``factor`` reads as ``true``.

    ``shape`` (the true shape class per row) is needed for orientation only.
    """
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)}")
    if factor == "orientation":
        if shape is None:
            raise ValueError("orientation accuracy needs the true shape of each row")
        return orientation_correct(shape, predicted, true)
    return np.asarray(predicted) == np.asarray(true)


def total_variation(p: Mapping[int, float], q: Mapping[int, float]) -> float:
    """``0.5 * sum |p - q|`` of two distributions given as ``{class: probability}``."""
    keys = set(p) | set(q)
    return 0.5 * float(sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys))
