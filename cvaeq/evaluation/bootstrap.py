"""Confidence intervals of evaluation figures: the percentile bootstrap over the test pictures.

Every figure ``cvaeq eval`` reports is a mean over test pictures (or a
function of such means: a mean over factors, bits per dimension), so its
uncertainty is that of a sample of pictures. The interval is the **percentile
bootstrap** (Efron 1979): draw the ``n`` pictures ``n`` times with
replacement, :data:`RESAMPLES` times, compute the figure on each resample,
and report the 2.5th and 97.5th percentiles of the ``RESAMPLES`` values (a
95% interval, :data:`LEVEL`).

Why percentile and not BCa: the figures are bounded (accuracies and IoUs in
[0, 1], L1 >= 0) and often sit on their bound (composition exactly 0,
effectiveness 1); a percentile interval lies inside the range of the resampled
figures, so it never leaves the bound and is ``[c, c]`` for a figure that is
``c`` on every picture, where BCa's acceleration (a ratio of jackknife
moments) is 0/0. BCa corrects a bias and skew that matter at small ``n``; at
the ``n`` of these tables (>= 100) the two agree to the digits printed.

All figures of one evaluation are resampled with the **same** draws of
pictures, so a derived figure (the mean over factors, a difference) gets the
interval of its own resampled values, not a combination of intervals.

>>> v = np.r_[np.zeros(50), np.ones(50)]
>>> lo, hi = mean_interval(v, seed=0)
>>> bool(0.39 < lo < 0.5 < hi < 0.61)
True
>>> mean_interval(np.full(10, 0.25), seed=0)
(0.25, 0.25)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "RESAMPLES",
    "LEVEL",
    "resample_counts",
    "resample_chunks",
    "resampled_means",
    "percentile_interval",
    "mean_interval",
    "figure_intervals",
    "interval_tree",
    "with_intervals",
    "METHOD",
]

#: Bootstrap resamples per evaluation (the Monte Carlo error of a 95% percentile bound from 1,000
#: resamples is about 0.1 of the interval's half-width: below the digits the tables print).
RESAMPLES = 1000
#: The intervals' coverage.
LEVEL = 0.95


#: Resamples drawn at a time: the counts of one chunk are ``CHUNK x n`` integers (40 MB at the largest
#: ``--n``, 100,000), so memory stays bounded whatever ``n`` and ``resamples`` are.
CHUNK = 50


def resample_chunks(n: int, resamples: int = RESAMPLES, seed: int = 0):
    """The counts of :func:`resample_counts`, ``CHUNK`` resamples at a time (the same draws, in order)."""
    if n < 1 or resamples < 1:
        raise ValueError(f"a bootstrap needs at least one picture and one resample, got n={n}, {resamples}")
    rng = np.random.default_rng([seed, 0xB007])
    cells = np.full(n, 1.0 / n)
    for lo in range(0, resamples, CHUNK):
        yield rng.multinomial(n, cells, size=min(CHUNK, resamples - lo)).astype(np.int64)


def resample_counts(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``(resamples, n)`` int64: how many times each of ``n`` pictures is drawn in each resample
    (``n`` draws with replacement: a multinomial of ``n`` trials over ``n`` equal cells)."""
    return np.concatenate(list(resample_chunks(n, resamples, seed)))


def resampled_means(values, counts: np.ndarray, weights=None) -> np.ndarray:
    """``(resamples,)`` the mean of ``values`` ``(n,)`` in each resample of ``counts``.

    With ``weights`` ``(n,)`` (>= 0), the weighted mean ``Σ c w v / Σ c w`` of each
    resample (a ratio estimator: the pictures are resampled, each with its weight).
    A resample whose drawn pictures include a non-finite value has a non-finite
    mean (a picture some model finds impossible: an infinite NLL); one whose
    weights sum to 0 is NaN.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    c = np.asarray(counts, dtype=np.float64)
    if c.shape[-1] != len(v):
        raise ValueError(f"{len(v)} values for resamples of {c.shape[-1]} pictures")
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != v.shape or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite, >= 0 and one per value")
    bad = ~np.isfinite(v)
    finite = np.where(bad, 0.0, v)
    cw = c * w
    total = cw.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cw @ finite) / total
    if bad.any():  # any draw of a non-finite value makes the resample's mean that value (inf, or nan)
        hit = c[:, bad] > 0
        first = np.where(hit.any(1), v[bad][hit.argmax(1)], 0.0)
        out = np.where(hit.any(1), first, out)
    return out


def percentile_interval(resampled, level: float = LEVEL) -> tuple[float, float] | None:
    """The ``level`` percentile interval of a figure's resampled values; None when any is not finite."""
    r = np.asarray(resampled, dtype=np.float64)
    if r.size == 0 or not np.isfinite(r).all():
        return None
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return float(lo), float(hi)


def mean_interval(
    values, *, weights=None, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the (weighted) mean of ``values`` ``(n,)``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    means = np.concatenate([resampled_means(v, c, weights) for c in resample_chunks(len(v), resamples, seed)])
    return percentile_interval(means, level)


def figure_intervals(
    figures: Callable[[Callable[[str], float]], Any],
    rows: Mapping[str, Any],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> Any:
    """The interval of every figure a report computes from per-picture rows.

    :param figures: ``figures(mean) -> tree``: builds the report's figures (nested
        dicts of floats or None) from ``mean(key)``, the mean over pictures of
        row ``key``; called once per resample with that resample's means.
    :param rows: ``{key: (n,) per-picture values}``, every key over the same ``n`` pictures.
    :returns: the same tree with each float leaf replaced by ``[lo, hi]`` (None
        where a resampled figure is not finite, e.g. an infinite NLL).
    """
    flat = {
        k: np.concatenate([np.asarray(p, np.float64).reshape(-1) for p in v])
        if isinstance(v, list)
        else np.asarray(v, np.float64).reshape(-1)
        for k, v in rows.items()
    }
    sizes = {len(v) for v in flat.values()}
    if len(sizes) != 1:
        raise ValueError(f"every row must hold one value per picture; got sizes {sorted(sizes)}")
    parts: dict[str, list] = {k: [] for k in flat}
    for counts in resample_chunks(sizes.pop(), resamples, seed):  # CHUNK resamples at a time: bounded memory
        for k, v in flat.items():
            parts[k].append(resampled_means(v, counts))
    boot = {k: np.concatenate(v) for k, v in parts.items()}

    def at(b: int) -> Callable[[str], float]:
        return lambda key: float(boot[key][b])

    trees = [figures(at(b)) for b in range(resamples)]
    return _leafwise(trees, level)


def _leafwise(trees: list, level: float) -> Any:
    first = trees[0]
    if isinstance(first, Mapping):
        return {k: _leafwise([t[k] for t in trees], level) for k in first}
    vals = [np.nan if t is None else t for t in trees]
    iv = percentile_interval(vals, level)
    return None if iv is None else [iv[0], iv[1]]


def interval_tree(values_by_key: Mapping[str, Any], **kw) -> dict:
    """``{key: [lo, hi]}`` of the means of independent samples (e.g. TV over its queries), each
    resampled on its own (a key with no values: None)."""
    out: dict = {}
    for k, v in values_by_key.items():
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        iv = mean_interval(v, **kw) if v.size else None
        out[k] = None if iv is None else [iv[0], iv[1]]
    return out


#: How the intervals were made, as ``cvaeq eval --json`` states it beside them (``ci_about``).
METHOD = "percentile bootstrap"


def with_intervals(
    report: dict,
    figures: Callable[[Callable[[str], float]], Any],
    rows: Mapping[str, Any],
    tv: Mapping[str, Any] | None,
    seed: int,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict:
    """``report`` with ``ci`` (every figure's ``[lo, hi]``, the same tree as the figures) and
    ``ci_about`` (method, resamples, level, and each interval's ``n``) added; no other key changes.

    The figures' intervals resample the test pictures (``n`` = the report's ``n``); the TV
    figures' resample the TV queries of their kind (they are means over queries, not pictures).
    """
    ci = figure_intervals(figures, rows, resamples=resamples, level=level, seed=seed)
    about: dict[str, Any] = {
        "method": METHOD,
        "over": "test pictures",
        "resamples": resamples,
        "level": level,
        "n": report["n"],
    }
    if tv is not None:
        per_kind = {
            kind: [q["tv"] for q in tv["queries"] if q["kind"] == kind] for kind in ("interventional", "counterfactual")
        }
        ci["tv"] = interval_tree(per_kind, resamples=resamples, level=level, seed=seed)
        about["n_tv"] = {kind: len(v) for kind, v in per_kind.items()}
    return {**report, "ci": ci, "ci_about": about}
