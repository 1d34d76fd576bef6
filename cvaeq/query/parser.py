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
expected '=' after 'shape', got ')' (at column 12)
P(X | shape)
           ^
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import QueryError, QuerySyntaxError
from .syntax import Assignment, Binding, Do, Name, Number, Query

__all__ = ["parse", "caret"]

# How terminals read in "expected ..." messages.
_SHOW = {
    "NAME": "a name",
    "NUMBER": "a number",
    "BINDING": "img",
    "$END": "the end of the query",
    "<END-OF-FILE>": "the end of the query",
}
_ORDER = ["P", "E", "LPAR", "LSQB", "NAME", "NUMBER", "BINDING", "DO", "EQUAL", "COMMA", "VBAR", "RPAR", "RSQB", "$END", "<END-OF-FILE>"]


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


def _error(cls: type[QueryError], message: str, column: int, text: str) -> QueryError:
    err = cls(message, column=column, text=text)
    err.caret = caret(text, column)  # type: ignore[attr-defined]
    return err


def _show(terminal: str) -> str:
    if terminal in _SHOW:
        return _SHOW[terminal]
    pattern = _lark().get_terminal(terminal).pattern
    return repr(pattern.value)


def _expected(terminals) -> str:
    names = sorted(set(terminals), key=lambda t: (_ORDER.index(t) if t in _ORDER else len(_ORDER), t))
    shown = [_show(t) for t in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class _Build(Transformer):
    """Parse tree → syntax nodes, keeping each token's column."""

    def start(self, children):
        return children[0]

    def probability(self, children):
        targets, conditions = children
        return Query("P", tuple(str(t) for t in targets), conditions or (), tuple(t.column for t in targets))

    def expectation(self, children):
        target, conditions = children
        return Query("E", (str(target),), conditions or (), (target.column,))

    def targets(self, children):
        return children

    def conditions(self, children):
        return tuple(children)

    def intervention(self, children):
        keyword, *assignments = children
        return Do(tuple(assignments), column=keyword.column)

    def assignment(self, children):
        variable, value = children
        return Assignment(str(variable), value, column=variable.column)

    @v_args(inline=True)
    def name(self, token: Token):
        return Name(str(token), column=token.column)

    @v_args(inline=True)
    def number(self, token: Token):
        return Number(float(token), text=str(token), column=token.column)

    @v_args(inline=True)
    def binding(self, token: Token):
        return Binding(str(token), column=token.column)


def parse(text: str) -> Query:
    """The syntax tree of a query's text; QuerySyntaxError if it is malformed.

    The returned :class:`~cvaeq.query.syntax.Query` remembers ``text`` as its
    ``source`` so later errors (from :func:`~cvaeq.query.resolve`) can point
    into it.
    """
    if not isinstance(text, str):
        raise QuerySyntaxError(f"a query must be text, got {type(text).__name__}")
    if not text.strip():
        raise _error(
            QuerySyntaxError, "empty query; write P(target | conditions) or E[target | conditions]", 1, text
        )
    if "\n" in text.rstrip():  # a trailing newline is harmless; any other would skew columns
        column = text.index("\n") + 1
        raise _error(QuerySyntaxError, "a query is one line; remove the line break", column, text)
    seen: list[Token] = []  # the tokens read so far, to say what the error came after
    ip = _lark().parse_interactive(text)
    before = ip.copy()  # the parser before the token being fed, to list what it accepts
    try:
        for token in ip.iter_parse():  # yields each token before feeding it
            seen.append(token)
            before = ip.copy()
        before = ip.copy()
        tree = ip.feed_eof(seen[-1] if seen else None)
    except (UnexpectedToken, UnexpectedCharacters) as e:
        fed = isinstance(e, UnexpectedToken) and (e.token.type == "$END" or (seen and e.token is seen[-1]))
        raise _syntax_error(e, seen, (before if fed else ip).accepts(), text) from None
    query = _Build().transform(tree)
    return Query(query.kind, query.targets, query.conditions, query.target_columns, source=text)


def _syntax_error(e: UnexpectedInput, seen: list[Token], accepts: set[str], text: str) -> QueryError:
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        position = e.token.start_pos
    elif isinstance(e, UnexpectedToken):
        position = len(text)
    else:
        position = e.pos_in_stream
    before = [t for t in seen if t.start_pos < position]
    previous = before[-1] if before else None
    after = f" after {str(previous)!r}" if previous is not None else " at the start"
    if isinstance(e, UnexpectedToken):
        expected = _expected(accepts)
        if e.token.type == "$END":
            column = len(text.rstrip()) + 1
            return _error(QuerySyntaxError, f"the query ends too early: expected {expected}{after}", column, text)
        message = f"expected {expected}{after}, got {str(e.token)!r}"
        return _error(QuerySyntaxError, message, e.column, text)
    assert isinstance(e, UnexpectedCharacters)
    char = text[e.pos_in_stream]
    expected = _expected(accepts)
    return _error(QuerySyntaxError, f"unexpected character {char!r}{after}; expected {expected}", e.column, text)
