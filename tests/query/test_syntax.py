"""The syntax tree prints canonical text that parses back to an equal tree."""

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvaeq.errors import QueryError
from cvaeq.query import Assignment, Binding, Do, E, Name, Number, P, Query, do, img, parse

# Names as the grammar reads them; `img` cannot be a name value and `do` cannot be a variable.
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
variables = names.filter(lambda s: s != "do")
number_texts = st.from_regex(r"-?([0-9]{1,3}(\.[0-9]{0,3})?|\.[0-9]{1,3})([eE][+-]?[0-9]{1,2})?", fullmatch=True)
values = st.one_of(
    names.filter(lambda s: s != "img").map(Name),
    st.floats(allow_nan=False, allow_infinity=False).map(Number),
    number_texts.map(lambda t: Number(float(t), t)),
    st.just(Binding("img")),
)
assignments = st.builds(Assignment, variables, values)
conditions = st.one_of(assignments, st.lists(assignments, min_size=1, max_size=3).map(lambda a: Do(tuple(a))))
queries = st.one_of(
    st.builds(
        Query,
        st.just("P"),
        st.lists(names, min_size=1, max_size=3).map(tuple),
        st.lists(conditions, max_size=4).map(tuple),
    ),
    st.builds(Query, st.just("E"), names.map(lambda n: (n,)), st.lists(conditions, max_size=4).map(tuple)),
)


@settings(max_examples=200)
@given(queries)
def test_random_trees_print_text_that_parses_back_to_them(tree):
    text = tree.to_text()
    assert str(tree) == text
    assert parse(text) == tree


@settings(max_examples=100)
@given(queries)
def test_canonical_text_is_a_fixed_point(tree):
    once = parse(tree.to_text()).to_text()
    assert parse(once).to_text() == once


@settings(max_examples=100)
@given(queries, st.data())
def test_spacing_never_changes_the_tree(tree, data):
    text = tree.to_text()
    spaced = "".join(
        ch + (" " * data.draw(st.integers(0, 2)) if ch in "(),|=[]" else "") for ch in text
    )
    assert parse(spaced) == tree


def test_builders_make_the_plain_dataclasses():
    assert P("X", do(shape="square"), X=img) == Query(
        "P",
        ("X",),
        (Do((Assignment("shape", Name("square")),)), Assignment("X", Binding("img"))),
    )
    assert E("posY", do(scale=1.0)) == Query("E", ("posY",), (Do((Assignment("scale", Number(1.0)),)),))


def test_number_text_defaults_to_the_shortest_repr_and_round_trips():
    assert Number(0.1).text == "0.1"
    assert Number(2).text == "2.0"
    assert Number(1e-20).to_text() == "1e-20"
    assert parse(P("posX", posY=1e-20).to_text()).evidence[0].value.value == 1e-20


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Name("img"), "keyword"),
        (lambda: Name("heart shape"), "must be a name"),
        (lambda: Assignment("do", Number(1)), "keyword"),
        (lambda: Number(math.inf), "finite"),
        (lambda: Number(True), "int or float"),
        (lambda: Number(0.5, "0.25"), "does not write"),
        (lambda: Binding("image"), "only binding is 'img'"),
        (lambda: Do(()), "one or more"),
        (lambda: Query("P", ()), "at least one target"),
        (lambda: Query("E", ("posX", "posY")), "exactly one target"),
        (lambda: Query("Q", ("posX",)), "P(...) or E[...]"),
        (lambda: P("posX", do(scale=[1])), "a value must be"),
        (lambda: P(do(scale=1), "posX"), "targets (strings) first"),
    ],
)
def test_trees_that_cannot_be_written_are_refused(make, words):
    with pytest.raises(QueryError, match=re.escape(words)):
        make()


def test_trees_are_hashable_values():
    assert len({P("shape"), parse("P( shape )"), P("scale")}) == 2
