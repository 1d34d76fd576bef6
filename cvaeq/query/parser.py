"""Reading query text into the syntax tree, with errors that point at the column.

The grammar lives in ``grammar.lark`` next to this file; lark's LALR parser
reads it and a Transformer builds the :mod:`cvaeq.query.syntax` nodes,
recording each token's column. Text that does not follow the grammar raises
:class:`~cvaeq.errors.QuerySyntaxError`, one line naming the column, what was
expected and what came instead; its ``caret`` attribute draws the text with
a ``^`` under the column.

>>> parse("P(scale | do(shape=heart))").to_text()
'P(scale | do(shape=heart))'
>>> try:
...     parse("P(X | shape)")
... except QuerySyntaxError as e:
...     print(e); print(e.caret)
expected '=', a comparison (<, <=, >, >=) or '@' after 'shape', got ')' (at column 12)
P(X | shape)
           ^
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from ..errors import QueryError, QuerySyntaxError
from .syntax import Assignment, At, Binding, Difference, Do, Event, Name, Number, Query

__all__ = ["parse", "caret", "MAX_QUERY_LENGTH", "MAX_TERMS"]

#: The longest query text read, in characters.
MAX_QUERY_LENGTH = 20_000
#: The most targets and assignments (evidence and settings in do()) in one query.
MAX_TERMS = 1_000

# How terminals read in "expected ..." messages.
_SHOW = {
    "NAME": "a name",
    "NUMBER": "a number",
    "BINDING": "img",
    "COMPARE": "a comparison (<, <=, >, >=)",
    "$END": "the end of the query",
    "<END-OF-FILE>": "the end of the query",
}
_ORDER = [
    "P",
    "E",
    "PN",
    "PS",
    "PNS",
    "LPAR",
    "LSQB",
    "NAME",
    "NUMBER",
    "BINDING",
    "DO",
    "EQUAL",
    "COMPARE",
    "COMMA",
    "VBAR",
    "RPAR",
    "RSQB",
    "AT",
    "MINUS",
    "SEMICOLON",
    "$END",
    "<END-OF-FILE>",
]


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = files("cvaeq.query").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True)


def caret(text: str, column: int) -> str:
    """``text`` with a ``^`` under ``column`` (1-based) on the next line.

    >>> print(caret("P(X |)", 6))
    P(X |)
         ^
    """
    return f"{text}\n{' ' * (column - 1)}^"


def _error(cls: type[QueryError], message: str, column: int | None, text: str) -> QueryError:
    column = column or 1  # every node of a parsed query has its column; 1 if one ever had none
    err = cls(message, column=column, text=text)
    err.caret = caret(text, column)  # type: ignore[attr-defined]
    return err


def _show(terminal: str) -> str:
    if terminal in _SHOW:
        return _SHOW[terminal]
    if terminal in ("PN", "PS", "PNS"):
        return repr(terminal)
    pattern = _lark().get_terminal(terminal).pattern
    return repr(pattern.value)


def _expected(terminals) -> str:
    terminals = set(terminals)
    if "SHORTCUT" in terminals:  # one terminal, three words
        terminals = (terminals - {"SHORTCUT"}) | {"PN", "PS", "PNS"}
    names = sorted(terminals, key=lambda t: (_ORDER.index(t) if t in _ORDER else len(_ORDER), t))
    shown = [_show(t) for t in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class _Build(Transformer):
    """Parse tree → syntax nodes, keeping each token's column."""

    def start(self, children):
        return children[0]

    def probability(self, children):
        targets, conditions = children
        return Query("P", tuple(t[0] for t in targets), conditions or (), tuple(t[1] for t in targets))

    def expectation(self, children):
        target, conditions = children
        value, column = _with_column(target)
        return Query("E", (value,), conditions or (), (column,))

    def targets(self, children):
        return [_with_column(t) for t in children]

    def event(self, children):
        variable, value = children
        target, column = _with_column(variable)
        return Event(target, value, column=column)

    def interval(self, children):
        variable, op, value = children
        target, column = _with_column(variable)
        return Event(target, value, column=column, op=str(op))

    def difference(self, children):
        left, right = (_with_column(v) for v in children)
        return Difference(left[0], right[0], column=left[1])

    def world_variable(self, children):
        name, world = children
        return At(str(name), world, column=name.column)

    def conditions(self, children):
        return tuple(children)

    def intervention(self, children):
        keyword, *assignments = children
        return Do(tuple(assignments), column=keyword.column)

    def assignment(self, children):
        variable, value = children
        target, column = _with_column(variable)
        return Assignment(target, value, column=column)

    setting = assignment

    def interval_evidence(self, children):
        variable, op, value = children
        target, column = _with_column(variable)
        return Assignment(target, value, column=column, op=str(op))

    def shortcut(self, children):
        name, *settings = children
        return (name, settings)

    @v_args(inline=True)
    def name(self, token: Token):
        return Name(str(token), column=token.column)

    @v_args(inline=True)
    def number(self, token: Token):
        value = float(token)
        if not math.isfinite(value):
            raise _Fail(f"the number {str(token)} is too large", token.column)
        return Number(value, text=str(token), column=token.column)

    @v_args(inline=True)
    def binding(self, token: Token):
        return Binding(str(token), column=token.column)


class _Fail(Exception):
    """A message and a column, raised inside the transformer."""

    def __init__(self, message: str, column: int | None):
        super().__init__(message)
        self.column = column


def _with_column(node: Any) -> tuple[Any, int]:
    """A target as the tree keeps it (a name as ``str``) and its column."""
    if isinstance(node, Token):
        assert node.column is not None  # the lexer's tokens always have one (lark types it Optional)
        return str(node), node.column
    return node, node.column


def _shortcut(name: Token, settings: list[Assignment], text: str) -> Query:
    """``PN(x, y; x', y')`` and its siblings, written out in the general form
    they abbreviate (docs/queries.md):

    - ``PN(x, y; x', y')  = P(Y @ do(x') = y' | x, y)``
    - ``PS(x, y; x', y')  = P(Y @ do(x) = y | x', y')``
    - ``PNS(x, y; x', y') = P(Y @ do(x) = y, Y @ do(x') = y')``
    """
    x, y, x2, y2 = settings
    form = f"{name}(x, y; x', y')"
    if x.variable != x2.variable:
        message = (
            f"{form} sets one treatment twice: got {x.variable} and then {x2.variable} "
            f"(write {x.variable}=... in both places)"
        )
        raise _error(QuerySyntaxError, message, x2.column, text)
    if y.variable != y2.variable:
        message = (
            f"{form} names one outcome twice: got {y.variable} and then {y2.variable} "
            f"(write {y.variable}=... in both places)"
        )
        raise _error(QuerySyntaxError, message, y2.column, text)
    if x.variable == y.variable:
        message = f"{form}: the treatment and the outcome are both {x.variable}; the outcome must be another variable"
        raise _error(QuerySyntaxError, message, y.column, text)
    X, Y = x.variable, y.variable
    assert isinstance(X, str) and isinstance(Y, str)  # a setting's variable is a NAME (the grammar's `setting`)

    def outcome(a: Assignment, value) -> Event:  # Y @ do(a) = value
        return Event(At(Y, Do((Assignment(X, a.value),))), value)

    if str(name) == "PN":
        return Query("P", (outcome(x2, y2.value),), (Assignment(X, x.value), Assignment(Y, y.value)))
    if str(name) == "PS":
        return Query("P", (outcome(x, y.value),), (Assignment(X, x2.value), Assignment(Y, y2.value)))
    return Query("P", (outcome(x, y.value), outcome(x2, y2.value)))


def parse(text: str) -> Query:
    """The syntax tree of a query's text; QuerySyntaxError if it is malformed.

    The returned :class:`~cvaeq.query.syntax.Query` remembers ``text`` as its
    ``source`` so later errors (from :func:`~cvaeq.query.resolve`) can point
    into it. A shortcut (``PN``, ``PS``, ``PNS``) is returned as the general
    query it abbreviates. Parsing takes time linear in the text, which may
    hold at most :data:`MAX_QUERY_LENGTH` characters and
    :data:`MAX_TERMS` targets and assignments.
    """
    if not isinstance(text, str):
        raise QuerySyntaxError(f"a query must be text, got {type(text).__name__}")
    return _parse_text(text)


@lru_cache(maxsize=256)
def _parse_text(text: str) -> Query:
    """:func:`parse` of a text, kept for the texts parsed lately: a query is parsed again and again
    (an explorer's or a notebook's question asked with another seed or picture), its tree is
    immutable, and lark takes about a millisecond a parse."""
    if not text.strip():
        raise _error(QuerySyntaxError, "empty query; write P(target | conditions) or E[target | conditions]", 1, text)
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"the query is {len(text):,} characters long; at most {MAX_QUERY_LENGTH:,} are allowed "
            "(ask several smaller queries)"
        )
    if "\n" in text.rstrip():  # a trailing newline is harmless; any other would skew columns
        column = text.index("\n") + 1
        raise _error(QuerySyntaxError, "a query is one line; remove the line break", column, text)
    try:
        tree = _lark().parse(text)
    except (UnexpectedToken, UnexpectedCharacters) as e:
        raise _syntax_error(e, text) from None
    try:
        built = _Build().transform(tree)
    except VisitError as e:
        cause = e.orig_exc
        if isinstance(cause, _Fail):
            raise _error(QuerySyntaxError, str(cause), cause.column or 1, text) from None
        if isinstance(cause, QueryError):
            raise cause from None
        raise
    query: Query = _shortcut(built[0], built[1], text) if isinstance(built, tuple) else built
    terms = len(query.targets) + len(query.interventions) + len(query.evidence)
    if terms > MAX_TERMS:
        raise QuerySyntaxError(
            f"the query has {terms:,} targets and assignments; at most {MAX_TERMS:,} are allowed "
            "(ask several smaller queries)"
        )
    return Query(query.kind, query.targets, query.conditions, query.target_columns, source=text)


def _replay(text: str, position: int) -> tuple[set[str], list[Token]]:
    """What the parser accepts just before ``position`` and the tokens before it.

    Run only on an error: one more linear pass over the text, feeding the
    tokens that start before ``position`` (the parser's stack is never copied
    per token, which made long queries quadratic).
    """
    seen: list[Token] = []
    ip = _lark().parse_interactive(text)
    try:
        for token in ip.iter_parse():  # yields each token before feeding it
            if token.start_pos is None or token.start_pos >= position:
                break
            seen.append(token)
    except (UnexpectedToken, UnexpectedCharacters):
        pass
    return ip.accepts(), seen


_NOT_A_NUMBER = re.compile(r"-?\.?[0-9][0-9A-Za-z_.]*|-?\.?[^\W_]+")


def _position(e: UnexpectedInput) -> int:
    """Where in the text ``e`` happened (lark declares ``pos_in_stream = None`` on its base class; its
    errors from the lexer set an int)."""
    return e.pos_in_stream  # type: ignore[return-value]


def _syntax_error(e: UnexpectedInput, text: str) -> QueryError:
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        position = e.token.start_pos
    elif isinstance(e, UnexpectedToken):
        position = len(text) + 1
    else:
        position = _position(e)
    accepts, seen = _replay(text, position)
    previous = seen[-1] if seen else None
    after = f" after {str(previous)!r}" if previous is not None else " at the start"
    if isinstance(e, UnexpectedToken):
        expected = _expected(accepts)
        if e.token.type == "$END":
            column = len(text.rstrip()) + 1
            return _error(QuerySyntaxError, f"the query ends too early: expected {expected}{after}", column, text)
        message = f"expected {expected}{after}, got {str(e.token)!r}"
        return _error(QuerySyntaxError, message, e.column, text)
    assert isinstance(e, UnexpectedCharacters)
    char = text[_position(e)]
    if "NUMBER" in accepts and (char.isdigit() or char in "-."):
        word = _NOT_A_NUMBER.match(text, _position(e))
        shown = word.group(0) if word else char
        if any(c.isdigit() and not c.isascii() for c in shown):
            why = "it has digits that are not ASCII; write numbers with the digits 0-9"
        elif "_" in shown:
            why = "numbers have no '_' separators"
        else:
            why = "a number is digits 0-9 with an optional '.' and exponent (1, 0.5, -1e-3)"
        return _error(QuerySyntaxError, f"{shown!r} is not a number{after}: {why}", e.column, text)
    if not char.isascii():
        return _error(
            QuerySyntaxError,
            f"unexpected character {char!r}{after}: the query language is ASCII (names A-Z, a-z, 0-9, _; digits 0-9)",
            e.column,
            text,
        )
    expected = _expected(accepts)
    return _error(QuerySyntaxError, f"unexpected character {char!r}{after}; expected {expected}", e.column, text)
