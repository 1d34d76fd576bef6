"""The query language: grammar, syntax tree, parser and resolution.

``parse`` reads text into a tree of frozen dataclasses (:mod:`.syntax`),
which Python code can also build directly with ``P``, ``E``, ``do`` and
``img``; ``resolve`` checks a tree against a story and gives the engine a
:class:`ResolvedQuery` (its rung, each target a variable in its scenario,
interventions and evidence as factor classes). Evaluation never parses. See docs/queries.md.

>>> parse("P(X | do(shape=square), X=img)") == P("X", do(shape="square"), X=img)
True
>>> parse("P(scale, scale @ do(shape=square) | X=img)") == P("scale", "scale" @ do(shape="square"), X=img)
True
"""

from .parser import caret, parse
from .resolution import Kind, ResolvedQuery, Rung, ScenarioVariable, resolve
from .syntax import (
    RESERVED,
    Assignment,
    At,
    Binding,
    Condition,
    Difference,
    Do,
    E,
    Event,
    Name,
    Number,
    P,
    Query,
    Value,
    diff,
    do,
    event,
    img,
    observe,
)

__all__ = [
    "parse",
    "caret",
    "resolve",
    "ResolvedQuery",
    "ScenarioVariable",
    "Rung",
    "Kind",
    "Query",
    "Do",
    "At",
    "Event",
    "Difference",
    "Assignment",
    "Name",
    "Number",
    "Binding",
    "Value",
    "Condition",
    "RESERVED",
    "P",
    "E",
    "do",
    "img",
    "event",
    "observe",
    "diff",
]
