"""A story's DAG as an SVG picture, with the arrows a ``do()`` cuts drawn cut.

Nodes are laid out in layers by their longest path from a root (roots on top,
the image X at the bottom), in the graph's topological order within a layer;
the drawing is plain SVG text, the same bytes for the same graph, with no
layout library and no script. An intervened node's incoming arrows are drawn
dashed and crossed out (the graph ``do()`` mutilates, :meth:`CausalGraph.mutilated`,
with the removed edges still visible so a reader sees what was cut); observed
nodes are shaded.

The web explorer (``cvaeq serve``) and the notebook display of a story both
draw it. Every ``<g>`` carries ``data-node`` or ``data-edge`` (and
``data-cut="true"`` for a cut arrow) so tests and scripts can read the
picture.

>>> from cvaeq.graph import CausalGraph
>>> g = CausalGraph([("a", "b"), ("b", "c")], nodes=["a", "b", "c"])
>>> svg = dag_svg(g, intervened=["b"])
>>> svg.startswith("<svg") and svg.count('data-cut="true"') == 1
True
>>> layers(g)
{'a': 0, 'b': 1, 'c': 2}
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from .errors import GraphError
from .graph import CausalGraph

__all__ = ["dag_svg", "layers"]

#: Geometry of the picture, in SVG user units (pixels at 100 %).
ROW = 78
NODE_H = 30
CHAR_W = 8.5
PAD = 16


def layers(graph: CausalGraph) -> dict[str, int]:
    """``{node: layer}``: the length of the longest path from any root to the node."""
    depth: dict[str, int] = {}
    for n in graph.order:
        depth[n] = max((depth[p] + 1 for p in graph.parents(n)), default=0)
    return depth


def _layout(graph: CausalGraph) -> tuple[dict[str, tuple[float, float, float]], float, float]:
    """``{node: (centre x, centre y, width)}`` and the picture's width and height."""
    depth = layers(graph)
    rows: dict[int, list[str]] = {}
    for n in graph.order:
        rows.setdefault(depth[n], []).append(n)
    # room for "do(n)", and for the arrows arriving at a node with many parents
    widths = {n: max(CHAR_W * (len(n) + 4) + 20, 18.0 * len(graph.parents(n))) for n in graph.order}
    gap = 28.0
    row_w = {d: sum(widths[n] for n in ns) + gap * (len(ns) - 1) for d, ns in rows.items()}
    width = max(row_w.values()) + 2 * PAD
    pos: dict[str, tuple[float, float, float]] = {}
    for d, ns in rows.items():
        x = (width - row_w[d]) / 2
        y = PAD + NODE_H / 2 + d * ROW
        for n in ns:
            pos[n] = (x + widths[n] / 2, y, widths[n])
            x += widths[n] + gap
    height = PAD * 2 + NODE_H + (max(rows) * ROW if rows else 0)
    return pos, width, height


def _ports(graph: CausalGraph, pos) -> dict[tuple[str, str], tuple[float, float, float, float]]:
    """Each edge's ends: from the bottom of its source to the top of its target (a little
    short, for the arrowhead), the arrows of a node spread over its width in the order of
    the nodes at their other ends, so that they do not all meet in one point."""

    def spread(node: str, others: list[str]) -> dict[str, float]:
        x, _, w = pos[node]
        others = sorted(others, key=lambda o: pos[o][0])
        k = len(others)
        return {o: x + (i - (k - 1) / 2) * (0.7 * w / max(k, 1)) for i, o in enumerate(others)}

    out_x = {n: spread(n, list(graph.children(n))) for n in graph.order}
    in_x = {n: spread(n, list(graph.parents(n))) for n in graph.order}
    return {
        (u, v): (out_x[u][v], pos[u][1] + NODE_H / 2, in_x[v][u], pos[v][1] - NODE_H / 2 - 2) for u, v in graph.edges
    }


def dag_svg(
    graph: CausalGraph, intervened: Iterable[str] = (), observed: Iterable[str] = (), title: str = "causal graph"
) -> str:
    """The SVG text of ``graph`` with the arrows into ``intervened`` nodes drawn cut.

    :param graph: the story's :class:`~cvaeq.graph.CausalGraph`.
    :param intervened: nodes set by ``do()``: their incoming arrows are cut.
    :param observed: nodes given as evidence: drawn shaded.
    :param title: the picture's accessible title.
    """
    intervened = set(intervened)
    observed = set(observed)
    for n in intervened | observed:
        if n not in graph:
            raise GraphError(f"unknown node {n!r}; known: {', '.join(graph.order)}")
    pos, width, height = _layout(graph)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        _MARKERS,
    ]
    ends = _ports(graph, pos)
    out += [_edge_svg(u, v, ends[u, v], cut=v in intervened) for u, v in graph.edges]
    out += [_node_svg(n, pos[n], intervened=n in intervened, observed=n in observed) for n in graph.order]
    out.append("</svg>")
    return "".join(out)


#: The arrow heads: grey, and red for the arrows that do() cuts.
_MARKERS = (
    "<defs>"
    '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker>'
    '<marker id="arrow-cut" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c0392b"/></marker>'
    "</defs>"
)


def _edge_svg(u: str, v: str, end: tuple[float, float, float, float], cut: bool) -> str:
    """The arrow ``u -> v`` from ``(x1, y1)`` to ``(x2, y2)``; a cut one dashed red with a cross."""
    x1, y1, x2, y2 = end
    name = escape(f"{u}->{v}")
    if not cut:
        return (
            f'<g data-edge="{name}"><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="#444" stroke-width="1.3" marker-end="url(#arrow)"/></g>'
        )
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    return (
        f'<g data-edge="{name}" data-cut="true"><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" '
        f'y2="{y2:.1f}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5 4" opacity="0.8" '
        f'marker-end="url(#arrow-cut)"/>'
        f'<path d="M{mx - 6:.1f},{my - 6:.1f} L{mx + 6:.1f},{my + 6:.1f} M{mx + 6:.1f},{my - 6:.1f} '
        f'L{mx - 6:.1f},{my + 6:.1f}" stroke="#c0392b" stroke-width="2.5"/></g>'
    )


def _node_svg(n: str, at: tuple[float, float, float], intervened: bool, observed: bool) -> str:
    """Node ``n`` at ``(x, y)`` with width ``w``: ``do(n)`` on orange when intervened, blue when observed."""
    x, y, w = at
    fill = "#fdebd0" if intervened else "#d6eaf8" if observed else "#ffffff"
    stroke = "#c0392b" if intervened else "#333"
    label = f"do({n})" if intervened else n
    return (
        f'<g data-node="{escape(n)}"><rect x="{x - w / 2:.1f}" y="{y - NODE_H / 2:.1f}" width="{w:.1f}" '
        f'height="{NODE_H}" rx="{NODE_H / 2}" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{2.2 if intervened else 1.2}"/>'
        f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle" font-family="sans-serif" '
        f'font-size="{13 if intervened else 14}">{escape(label)}</text></g>'
    )
