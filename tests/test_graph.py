import pytest

from cvaeq.errors import GraphError
from cvaeq.graph import CausalGraph


def test_cycle_is_named():
    with pytest.raises(GraphError, match="cycle"):
        CausalGraph([("a", "b"), ("b", "a")])


def test_order_parents_and_mutilation():
    g = CausalGraph([("a", "c"), ("b", "c"), ("c", "d")], nodes=["a", "b", "c", "d"])
    assert g.order == ("a", "b", "c", "d")
    assert g.parents("c") == ("a", "b")
    assert g.descendants("a") == {"c", "d"}
    m = g.mutilated(["c"])
    assert m.parents("c") == () and m.parents("d") == ("c",)
    assert g.parents("c") == ("a", "b")  # the original is untouched


def test_d_separation():
    g = CausalGraph([("a", "c"), ("b", "c"), ("c", "d")])
    assert g.d_separated({"a"}, {"b"}, set())
    assert not g.d_separated({"a"}, {"b"}, {"c"})  # collider opened
    assert not g.d_separated({"a"}, {"b"}, {"d"})  # descendant of the collider
    assert g.d_separated({"a"}, {"d"}, {"c"})


def test_unknown_node():
    g = CausalGraph([("a", "b")])
    with pytest.raises(GraphError, match="unknown node 'z'; known: a, b"):
        g.parents("z")
