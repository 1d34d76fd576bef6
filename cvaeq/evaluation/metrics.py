"""The scores evaluation reports: IoU of binary images, factor accuracy modulo
the classes that draw the same image, total variation.

A world may declare, per factor, the classes that render identically given
another factor (``world.equivalent``: ``{factor: (given, table)}``,
``table[g, k, j]`` True when classes ``k`` and ``j`` of ``factor`` draw the
same image under class ``g`` of ``given``). A read class counts as correct
when it is equivalent to the true one: q(factors | X) cannot tell them apart
from the image, and the model's classifier is trained against the same table.
dSprites declares orientation given shape: a square looks the same turned by
pi/2, an ellipse by pi, a heart only by 2*pi (classes within half a grid step
modulo the period, "at most": the ellipse's period falls exactly half-way
between two grid classes).

>>> import numpy as np
>>> from cvaeq.world import get_world
>>> a = np.zeros((1, 4, 4), bool); a[0, :2] = True
>>> b = np.zeros((1, 4, 4), bool); b[0, 1:3] = True
>>> iou(a, b).tolist(), l1(a, b).tolist()
([0.3333333333333333], [0.5])
>>> bool(factor_correct(get_world("dsprites"), "orientation", [20], [0], given=[1])[0])   # ellipse turned by pi
True
>>> total_variation({0: 0.5, 1: 0.5}, {0: 1.0})
0.5
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["iou", "soft_iou", "l1", "binarise", "factor_correct", "given_factor", "total_variation", "THRESHOLD"]

#: Pixel probability above which a mean image counts as "on".
THRESHOLD = 0.5


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


def l1(a, b) -> np.ndarray:
    """``(N,)`` mean absolute pixel difference of two stacks of images in [0, 1]
    ``(N, H, W)``: the L1 distance per pixel (0 identical, 1 every pixel opposite).

    On binary images it is the fraction of pixels that differ. The image
    distance of Monteiro et al. (ICLR 2023) and Melistas et al. (NeurIPS 2024),
    averaged over pixels, with images on the [0, 1] scale.
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    return np.abs(a - b).mean(1)


def given_factor(world, factor: str) -> str | None:
    """The factor whose class decides which classes of ``factor`` look alike
    (``world.equivalent``), or None when every class draws its own image."""
    entry = world.equivalent.get(factor)
    return None if entry is None else entry[0]


def factor_correct(world, factor: str, predicted, true, given=None) -> np.ndarray:
    """Bool per row: ``predicted`` class of ``factor`` draws the same image as ``true``.

    :param world: the :class:`~cvaeq.world.World` (its ``equivalent`` table).
    :param given: per row, the true class of :func:`given_factor` (needed
        only for a factor with an equivalence table; dSprites: the shape, for
        orientation).
    """
    if factor not in world.names:
        raise ValueError(f"unknown factor {factor!r}; world {world.name!r} has {', '.join(world.names)}")
    entry = world.equivalent.get(factor)
    if entry is None:
        return np.asarray(predicted) == np.asarray(true)
    if given is None:
        raise ValueError(f"{factor} accuracy needs the true {entry[0]} of each row")
    table = np.asarray(entry[1], dtype=bool)
    return table[np.asarray(given), np.asarray(predicted), np.asarray(true)]


def total_variation(p: Mapping[int, float], q: Mapping[int, float]) -> float:
    """``0.5 * sum |p - q|`` of two distributions given as ``{class: probability}``."""
    keys = set(p) | set(q)
    return 0.5 * float(sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys))


def finite_or_none(x: float) -> float | None:
    """JSON has no infinity: an infinite NLL (some image impossible under the model) is null."""
    return float(x) if np.isfinite(x) else None
