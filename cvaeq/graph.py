"""The causal graph: a DAG over named nodes, kept in a networkx DiGraph.

The engine reads parents and topological order from it, ``do()`` mutilates it,
and the tests read the conditional independences it implies (d-separation).

>>> g = CausalGraph([("a", "b"), ("b", "c")], nodes=["a", "b", "c"])
>>> g.order
('a', 'b', 'c')
>>> g.mutilated(["b"]).parents("b")
()
>>> g.d_separated({"a"}, {"c"}, {"b"})
True
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from .errors import GraphError

__all__ = ["CausalGraph"]


class CausalGraph:
    """An immutable DAG. Parents keep the order in which edges were given."""

    def __init__(self, edges: Iterable[tuple[str, str]], nodes: Iterable[str] = ()):
        g = nx.DiGraph()
        g.add_nodes_from(nodes)
        g.add_edges_from(edges)
        if not nx.is_directed_acyclic_graph(g):
            cycle = " -> ".join(u for u, _ in nx.find_cycle(g))
            raise GraphError(f"the graph has a cycle: {cycle}; a causal graph must be acyclic")
        self._g = g
        # Stable topological order: ties broken by the order nodes were declared.
        rank = {n: i for i, n in enumerate(g.nodes)}
        self.order: tuple[str, ...] = tuple(nx.lexicographical_topological_sort(g, key=rank.get))
        self._parents = {n: tuple(g.predecessors(n)) for n in g.nodes}

    @property
    def nx(self) -> nx.DiGraph:
        """A copy of the underlying networkx graph."""
        return self._g.copy()

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.order

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._g.edges)

    def _check(self, node: str) -> None:
        if node not in self._g:
            raise GraphError(f"unknown node {node!r}; known: {', '.join(self.order)}")

    def __contains__(self, node: str) -> bool:
        return node in self._g

    def parents(self, node: str) -> tuple[str, ...]:
        self._check(node)
        return self._parents[node]

    def children(self, node: str) -> tuple[str, ...]:
        self._check(node)
        return tuple(self._g.successors(node))

    def descendants(self, node: str) -> frozenset[str]:
        self._check(node)
        return frozenset(nx.descendants(self._g, node))

    def ancestors(self, node: str) -> frozenset[str]:
        self._check(node)
        return frozenset(nx.ancestors(self._g, node))

    def mutilated(self, targets: Iterable[str]) -> CausalGraph:
        """The graph of ``do(targets)``: every edge into a target removed."""
        targets = set(targets)
        for t in targets:
            self._check(t)
        edges = [(u, v) for u, v in self._g.edges if v not in targets]
        return CausalGraph(edges, nodes=self.order)

    def d_separated(self, xs: set[str], ys: set[str], zs: set[str]) -> bool:
        """Whether ``xs`` and ``ys`` are d-separated given ``zs``."""
        for n in set(xs) | set(ys) | set(zs):
            self._check(n)
        return nx.is_d_separator(self._g, set(xs), set(ys), set(zs))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CausalGraph) and self.order == other.order and set(self.edges) == set(other.edges)

    def __hash__(self) -> int:
        return hash((self.order, frozenset(self.edges)))

    def __repr__(self) -> str:
        return f"CausalGraph(nodes={list(self.order)}, edges={list(self.edges)})"
