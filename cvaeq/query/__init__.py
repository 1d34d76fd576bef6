"""The query language: grammar, syntax tree, parser and resolution.

``parse`` reads text into a tree of frozen dataclasses (:mod:`.syntax`),
which Python code can also build directly with ``P``, ``E``, ``do`` and
``img``; ``resolve`` checks a tree against a story and gives the engine a
:class:`ResolvedQuery` (kind, targets, interventions and evidence as factor
classes). Evaluation never parses. See docs/queries.md.

>>> parse("P(X | do(shape=square), X=img)") == P("X", do(shape="square"), X=img)
True
"""

from .parser import caret, parse
from .resolution import Kind, ResolvedQuery, resolve
from .syntax import RESERVED, Assignment, Binding, Condition, Do, E, Name, Number, P, Query, Value, do, img

__all__ = [
    "parse",
    "caret",
    "resolve",
    "ResolvedQuery",
    "Kind",
    "Query",
    "Do",
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
]
