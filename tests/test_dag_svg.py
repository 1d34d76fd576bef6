"""The DAG picture: every node and edge drawn once, the arrows into do() nodes cut,
nodes placed in layers below their parents, the same bytes for the same graph."""

import re

import pytest

from cvaeq.dag_svg import dag_svg, layers
from cvaeq.errors import GraphError
from cvaeq.graph import CausalGraph
from cvaeq.story import load_story


def centres(svg):
    return {m[0]: float(m[1]) for m in re.findall(r'data-node="([^"]+)"><rect x="[^"]+" y="([^"]+)"', svg)}


def test_every_node_and_edge_once_and_parents_above_children():
    g = load_story("default").graph
    svg = dag_svg(g)
    ys = centres(svg)
    assert set(ys) == set(g.order)
    assert sorted(re.findall(r'data-edge="([^"]+)"', svg)) == sorted(f"{u}-&gt;{v}" for u, v in g.edges)
    for u, v in g.edges:
        assert ys[u] < ys[v]
    assert dag_svg(g) == svg


@pytest.mark.parametrize("do", [["posY"], ["scale", "posX"], []])
def test_exactly_the_arrows_into_intervened_nodes_are_cut(do):
    g = load_story("default").graph
    svg = dag_svg(g, intervened=do, observed=["X"])
    cut = re.findall(r'data-edge="([^"]+)" data-cut="true"', svg)
    assert sorted(cut) == sorted(f"{u}-&gt;{v}" for u, v in g.edges if v in do)
    assert set(g.edges) - set(g.mutilated(do).edges) == {tuple(e.split("-&gt;")) for e in cut}
    for n in do:
        assert f">do({n})<" in svg


def test_layers_are_longest_paths_and_unknown_nodes_are_refused():
    g = CausalGraph([("a", "b"), ("b", "c"), ("a", "c")], nodes=["a", "b", "c"])
    assert layers(g) == {"a": 0, "b": 1, "c": 2}
    with pytest.raises(GraphError, match="unknown node 'q'"):
        dag_svg(g, intervened=["q"])
    assert "&lt;b&gt;" in dag_svg(CausalGraph([("<b>", "c")], nodes=["<b>", "c"]))
