"""Random small discrete SCMs over a mechanism family, and exact enumeration.

>>> from cvaeq.mechanisms import gumbel_max
>>> scm, tables = random_scm(gumbel_max, SCMSpec(sizes=(2, 3), edges=((0, 1),), seed=0))
>>> scm.nodes, scm.mechanisms["v1"].parents
(('v0', 'v1'), ('v0',))
>>> float(round(sum(enumerate_marginals(scm, tables, {})["v1"]), 6))
1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from ..graph import CausalGraph
from ..scm import SCM

__all__ = ["SCMSpec", "scm_specs", "random_scm", "random_tables", "enumerate_marginals", "resolve_family"]


@dataclass(frozen=True)
class SCMSpec:
    """A small DAG ``v0 .. v{n-1}`` (edges ``i -> j`` with ``i < j``) and a parameter seed."""

    sizes: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    seed: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"v{i}" for i in range(len(self.sizes)))


@st.composite
def scm_specs(draw, max_nodes: int = 4, max_size: int = 3) -> SCMSpec:
    """Hypothesis strategy of :class:`SCMSpec`: 2..max_nodes nodes of 2..max_size classes."""
    n = draw(st.integers(2, max_nodes))
    sizes = tuple(draw(st.lists(st.integers(2, max_size), min_size=n, max_size=n)))
    pairs = [(i, j) for j in range(n) for i in range(j)]
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    seed = draw(st.integers(0, 2**31 - 1))
    return SCMSpec(sizes, tuple(p for p, k in zip(pairs, keep) if k), seed)


def resolve_family(family: str | Callable[..., object]) -> Callable[..., object]:
    """A family's factory: a registered name, or the factory itself."""
    if isinstance(family, str):
        from ..plugins import get_mechanism_family

        return get_mechanism_family(family).factory
    return family


def random_tables(spec: SCMSpec, graph: CausalGraph, floor: float = 0.5) -> dict[str, np.ndarray]:
    """Random probability tables ``[*parent sizes, size]``, each entry at least ``floor / size``."""
    rng = np.random.default_rng(spec.seed)
    tables = {}
    for i, v in enumerate(spec.names):
        shape = tuple(spec.sizes[spec.names.index(p)] for p in graph.parents(v)) + (spec.sizes[i],)
        d = rng.dirichlet(np.ones(spec.sizes[i]), size=shape[:-1])
        tables[v] = (1 - floor) * d + floor / spec.sizes[i]
    return tables


def random_scm(
    family: str | Callable[..., object], spec: SCMSpec, floor: float = 0.5
) -> tuple[SCM, dict[str, np.ndarray]]:
    """The SCM of ``spec``, every node built as ``factory(parents=..., probs=table)``, and its tables."""
    factory = resolve_family(family)
    graph = CausalGraph([(f"v{i}", f"v{j}") for i, j in spec.edges], nodes=spec.names)
    tables = random_tables(spec, graph, floor)
    mechanisms: dict[str, Any] = {
        v: factory(parents=graph.parents(v), probs=torch.as_tensor(tables[v])) for v in spec.names
    }
    return SCM(graph, mechanisms), tables


def enumerate_marginals(
    scm: SCM, tables: Mapping[str, np.ndarray], interventions: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """Exact marginals of every node under ``do(interventions)``, by brute-force enumeration."""
    names = scm.nodes
    sizes = [tables[v].shape[-1] for v in names]
    out = {v: np.zeros(s) for v, s in zip(names, sizes)}
    for combo in itertools.product(*(range(s) for s in sizes)):
        world = dict(zip(names, combo))
        p = 1.0
        for v in names:
            if v in interventions:
                p *= float(world[v] == interventions[v])
            else:
                p *= tables[v][tuple(world[q] for q in scm.graph.parents(v)) + (world[v],)]
            if p == 0.0:
                break
        for v in names:
            out[v][world[v]] += p
    return out
