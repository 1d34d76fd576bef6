"""Exact joints of several worlds of a Gumbel-max SCM, by integrating the noise.

The engine answers PN, PS, PNS and ETT with particles; this module computes
them exactly, independently of the engine, for checks and for the worked
examples of docs/queries.md.

One node, two worlds. The node is ``argmax_i(a_i + G_i)`` in one world and
``argmax_i(b_i + G_i)`` in the other (``a``, ``b``: its log-probabilities
given its parents there), with one Gumbel vector ``G`` shared. Substituting
``u = exp(-G_k)`` turns the integral over the Gumbel noise into closed forms:

- both worlds pick ``k``: ``1 / (1 + sum_{i != k} max(e^(a_i - a_k), e^(b_i - b_k)))``;
- the first picks ``k``, the second ``j != k``: with ``t = G_j - G_k``,
  ``integral over t in [b_k - b_j, a_k - a_j] of
  e^(-t) / (1 + e^(-t) + sum_{i != j,k} max(e^(a_i - a_k), e^(b_i - b_j - t)))^2 dt``
  (zero when the interval is empty), a smooth one-dimensional integral
  (scipy's ``quad``, to about 1e-12).

Many nodes: the noises of different nodes are independent, so the joint of
all worlds is a product over nodes in topological order of these pairs,
enumerated over values (:func:`world_joint`). Worlds in which a node's
parents agree give it the same logits and so the same value.

>>> import numpy as np
>>> m = gumbel_pair(np.log([0.5, 0.5]), np.log([0.9, 0.1]))
>>> np.round(m.sum(1), 6).tolist(), np.round(m.sum(0), 6).tolist()   # the two marginals
([0.5, 0.5], [0.9, 0.1])
>>> round(float(m[1, 0]), 6)   # counterfactual stability: 0 -> 1 never happens
0.4
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["gumbel_pair", "world_joint", "probability"]


def gumbel_pair(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    """``M[k, j] = P(argmax(a + G) = k, argmax(b + G) = j)`` for one shared Gumbel vector ``G``."""
    from scipy.integrate import quad

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    m = np.zeros((n, n))
    for k in range(n):
        others = [i for i in range(n) if i != k]
        m[k, k] = 1.0 / (1.0 + sum(max(np.exp(a[i] - a[k]), np.exp(b[i] - b[k])) for i in others))
        for j in others:
            lo, hi = b[k] - b[j], a[k] - a[j]
            if not lo < hi:
                continue
            rest = [i for i in range(n) if i not in (j, k)]

            def density(t, j=j, k=k, rest=rest):
                s = 1.0 + np.exp(-t) + sum(max(np.exp(a[i] - a[k]), np.exp(b[i] - b[j] - t)) for i in rest)
                return np.exp(-t) / s**2

            kinks = sorted(t for t in ((b[i] - b[j]) - (a[i] - a[k]) for i in rest) if lo < t < hi)
            m[k, j] = quad(density, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200, points=kinks or None)[0]
    return m


def world_joint(
    tables: Mapping[str, np.ndarray],
    parents: Mapping[str, Sequence[str]],
    order: Sequence[str],
    worlds: Sequence[Mapping[str, int]],
) -> list[tuple[float, list[dict[str, int]]]]:
    """Every joint outcome of ``worlds`` (interventions ``{node: class}``; ``{}``
    is the factual world) sharing one noise, with its probability.

    :param tables: ``{node: P(node | parents)}``, shape ``[*parent sizes, size]``.
    :param parents: ``{node: parent names}`` in the order of the table's axes.
    :param order: the nodes in a topological order.
    :returns: ``[(probability, [values of world 0, values of world 1, ...])]``
        over the outcomes of non-zero probability.
    """
    branches: list[tuple[float, list[dict[str, int]]]] = [(1.0, [{} for _ in worlds])]
    for v in order:
        table = np.asarray(tables[v], dtype=np.float64)
        grown = []
        for p, values in branches:
            free = [w for w, do in enumerate(worlds) if v not in do]
            rows: dict[tuple, list[int]] = {}
            for w in free:
                rows.setdefault(tuple(values[w][q] for q in parents[v]), []).append(w)
            groups = list(rows.items())
            if len(groups) > 2:
                raise NotImplementedError(f"{v} has three different parent values across the worlds")
            logs = [np.log(table[row]) for row, _ in groups]
            choices: list[tuple[tuple[int, ...], float]]
            if not groups:
                choices = [((), 1.0)]
            elif len(groups) == 1:
                choices = [((k,), float(np.exp(logs[0][k]))) for k in range(table.shape[-1])]
            else:
                m = gumbel_pair(logs[0], logs[1])
                choices = [((k, j), float(m[k, j])) for k, j in itertools.product(range(table.shape[-1]), repeat=2)]
            for picked, q in choices:
                if q <= 0.0:
                    continue
                new = [dict(d) for d in values]
                for w, do in enumerate(worlds):
                    if v in do:
                        new[w][v] = int(do[v])
                for (_, ws), k in zip(groups, picked):
                    for w in ws:
                        new[w][v] = k
                grown.append((p * q, new))
        branches = grown
    return branches


def probability(joint, event, given=None) -> float:
    """``P(event | given)`` over :func:`world_joint`'s outcomes; ``event`` and
    ``given`` are functions of the list of per-world values."""
    num = sum(p for p, values in joint if event(values) and (given is None or given(values)))
    den = sum(p for p, values in joint if given is None or given(values))
    return num / den
