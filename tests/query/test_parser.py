"""parse(text) gives the tree built in Python; malformed text fails at the right column."""

import pytest

from cvaeq.errors import QueryError, QuerySyntaxError
from cvaeq.query import Assignment, Binding, Do, E, Name, Number, P, Query, do, img, parse

BUILT = [
    ("P(X | do(shape=square), X=img)", P("X", do(shape="square"), X=img)),
    ("P(scale | do(shape=heart))", P("scale", do(shape="heart"))),
    ("E[posY | do(scale=1.0)]", E("posY", do(scale=1.0))),
    ("P(shape | X=img)", P("shape", X=img)),
    ("P(shape, scale)", P("shape", "scale")),
    ("P(posY | do(scale=0.5, posX=0.2), shape=heart)", P("posY", do(scale=0.5, posX=0.2), shape="heart")),
    ("P(shape)", Query("P", ("shape",))),
    (
        "P(X | shape=heart, do(shape=square), X=img)",
        Query(
            "P",
            ("X",),
            (
                Assignment("shape", Name("heart")),
                Do((Assignment("shape", Name("square")),)),
                Assignment("X", Binding("img")),
            ),
        ),
    ),
    ("P(posX | do(scale=1), do(posY=0))", P("posX", do(scale=1), do(posY=0))),
    ("E[orientation | orientation=-1.5e-3]", E("orientation", orientation=-1.5e-3)),
]


@pytest.mark.parametrize("text, built", BUILT, ids=[t for t, _ in BUILT])
def test_parse_equals_the_tree_built_in_python(text, built):
    assert parse(text) == built
    assert parse(text).to_text() == text


def test_whitespace_does_not_matter():
    assert parse(" P ( X|do( shape = square ) ,X= img ) ") == parse("P(X | do(shape=square), X=img)")
    assert parse("E[posY|do(scale=1.0)]").to_text() == "E[posY | do(scale=1.0)]"


def test_numbers_keep_their_text_and_compare_by_value():
    q = parse("P(posY | do(scale=1), posX=.50, orientation=3.1e0)")
    values = [a.value for a in q.interventions + q.evidence]
    assert [v.to_text() for v in values] == ["1", ".50", "3.1e0"]
    assert [v.value for v in values] == [1.0, 0.5, 3.1]
    assert q == P("posY", do(scale=1.0), posX=0.5, orientation=3.1)
    assert q.to_text() == "P(posY | do(scale=1), posX=.50, orientation=3.1e0)"


def test_interventions_and_evidence_are_split_in_order():
    q = parse("P(X | posX=0.1, do(shape=square, scale=1), posY=0.2, do(orientation=0))")
    assert [a.variable for a in q.interventions] == ["shape", "scale", "orientation"]
    assert [a.variable for a in q.evidence] == ["posX", "posY"]


def test_columns_are_recorded_but_not_compared():
    q = parse("P(shape, scale | do(posX=0.5), X=img)")
    assert q.target_columns == (3, 10)
    (d, x) = q.conditions
    assert d.column == 18 and d.assignments[0].column == 21 and d.assignments[0].value.column == 26
    assert x.column == 32 and x.value.column == 34
    assert q.source == "P(shape, scale | do(posX=0.5), X=img)"


def test_keywords_are_names_where_the_grammar_allows_a_name():
    # `img` is a binding only where a value goes; `do` is a keyword only where a condition starts.
    assert parse("P(img | shape=do)") == Query("P", ("img",), (Assignment("shape", Name("do")),))
    assert parse("P(X | img=1)").evidence == (Assignment("img", Number(1)),)


SYNTAX_ERRORS = [
    # text, column, words the message must contain
    ("P(X | shape)", 12, ["expected '='", "after 'shape'", "got ')'"]),
    ("P(X | shape=)", 13, ["expected a name, a number or img", "after '='"]),
    ("P(X", 4, ["ends too early", "expected '=', a comparison (<, <=, >, >=), ',', '|', ')' or '@'", "after 'X'"]),
    ("P(shape | do(shape=heart", 25, ["ends too early", "expected ',' or ')'"]),
    ("Q(X)", 1, ["expected 'P', 'E', 'PN', 'PS' or 'PNS' at the start", "got 'Q'"]),
    ("P(X #)", 5, ["unexpected character '#'", "after 'X'"]),
    ("E[posY, scale]", 7, ["expected '|', ']', '@' or '-'", "after 'posY'"]),
    ("P(X) x", 6, ["expected the end of the query", "after ')'"]),
    ("P(X | do())", 10, ["expected a name", "after '('"]),
    ("P(X | do=3)", 9, ["expected '('", "after 'do'"]),
    ("P(X |)", 6, ["expected a name or 'do'", "after '|'"]),
    ("P(X | scale=1.2.3)", 16, ["expected ',' or ')'", "after '1.2'", "got '.3'"]),
    ("E(posY)", 2, ["expected '['", "after 'E'"]),
    ("   ", 1, ["empty query"]),
    ("P(X |\n shape=heart)", 6, ["one line"]),
]


@pytest.mark.parametrize("text, column, words", SYNTAX_ERRORS, ids=[t for t, _, _ in SYNTAX_ERRORS])
def test_syntax_errors_name_the_column_and_what_was_expected(text, column, words):
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    e = info.value
    assert e.column == column
    message = str(e)
    assert "\n" not in message and message.endswith(f"(at column {column})")
    for w in words:
        assert w in message
    line, marks = e.caret.rsplit("\n", 1)
    assert line == text and marks == " " * (column - 1) + "^"


def test_syntax_errors_are_query_errors():
    with pytest.raises(QueryError):
        parse("P(")


def test_parse_rejects_non_text():
    with pytest.raises(QuerySyntaxError, match="must be text"):
        parse(b"P(X)")
