"""The syntax tree of a query: frozen dataclasses that print back to text.

A query is ``P(targets | conditions)`` or ``E[target | conditions]``; a
condition is an intervention ``do(a=v, ...)`` or a piece of evidence ``a=v``.
Every node has :meth:`to_text` (also its ``str``), which prints canonical
text that :func:`cvaeq.query.parse` reads back to an equal tree. Columns
recorded by the parser are kept on the nodes (1-based, for error messages)
but take no part in equality, so a parsed tree equals the one built in
Python:

>>> q = P("X", do(shape="square"), X=img)
>>> q.to_text()
'P(X | do(shape=square), X=img)'
>>> q.interventions[0].value
Name(value='square')
>>> E("posY", do(scale=1.0)).to_text()
'E[posY | do(scale=1.0)]'

The tree is syntax only: whether a name is a known variable or a value on
its domain is decided by :func:`cvaeq.query.resolve` against a story.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, Union

from ..errors import QueryError

__all__ = [
    "Name",
    "Number",
    "Binding",
    "Value",
    "Assignment",
    "Do",
    "Condition",
    "Query",
    "P",
    "E",
    "do",
    "img",
    "RESERVED",
]

#: Words the grammar reads as keywords: ``do`` where a condition starts and
#: ``img`` where a value goes; there they cannot be names.
RESERVED = frozenset({"do", "img"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


def _check_name(name: object, what: str, reserved: str | None = None) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise QueryError(f"{what} must be a name (letters, digits, _; not starting with a digit), got {name!r}")
    if name == reserved:
        raise QueryError(f"{what} cannot be {name!r}: it is a keyword of the query language")


@dataclass(frozen=True)
class Name:
    """A value written as a name, e.g. the shape ``heart``."""

    value: str
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.value, "a name value", reserved="img")

    def to_text(self) -> str:
        return self.value

    __str__ = to_text


@dataclass(frozen=True)
class Number:
    """A numeric value. ``text`` is how it was written (kept so it prints back
    exactly); equality compares the number only, so ``1`` equals ``1.0``.

    >>> Number(0.5).to_text(), Number(1e-3, "0.001").to_text()
    ('0.5', '0.001')
    >>> Number(1.0, "1") == Number(1.0)
    True
    """

    value: float
    text: str | None = field(default=None, compare=False)
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise QueryError(f"a number value must be an int or float, got {self.value!r}")
        if not math.isfinite(self.value):
            raise QueryError(f"a number value must be finite, got {self.value!r}")
        object.__setattr__(self, "value", float(self.value))
        text = self.text if self.text is not None else repr(self.value)
        if not _NUMBER.match(text) or float(text) != self.value:
            raise QueryError(f"{text!r} does not write the number {self.value!r}")
        object.__setattr__(self, "text", text)

    def to_text(self) -> str:
        return self.text  # type: ignore[return-value]

    __str__ = to_text


@dataclass(frozen=True)
class Binding:
    """A value bound from outside the query: ``img``, the image given with ``--image``."""

    name: str = "img"
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.name != "img":
            raise QueryError(f"the only binding is 'img' (the image given with --image), got {self.name!r}")

    def to_text(self) -> str:
        return self.name

    __str__ = to_text


Value = Union[Name, Number, Binding]


@dataclass(frozen=True)
class Assignment:
    """``variable=value``: evidence at the top level, an intervention inside :class:`Do`."""

    variable: str
    value: Value
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.variable, "a variable", reserved="do")
        if not isinstance(self.value, (Name, Number, Binding)):
            raise QueryError(f"the value of {self.variable} must be a Name, Number or Binding, got {self.value!r}")

    def to_text(self) -> str:
        return f"{self.variable}={self.value.to_text()}"

    __str__ = to_text


@dataclass(frozen=True)
class Do:
    """``do(a=v, ...)``: one or several interventions."""

    assignments: tuple[Assignment, ...]
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignments", tuple(self.assignments))
        if not self.assignments or not all(isinstance(a, Assignment) for a in self.assignments):
            raise QueryError("do() needs one or more assignments, e.g. do(shape=square)")

    def to_text(self) -> str:
        return "do(" + ", ".join(a.to_text() for a in self.assignments) + ")"

    __str__ = to_text


Condition = Union[Do, Assignment]


@dataclass(frozen=True)
class Query:
    """A whole query. ``kind`` is ``"P"`` (distribution) or ``"E"`` (expectation,
    exactly one target); ``conditions`` keep the order they were written in.

    ``target_columns`` and ``source`` (the text it was parsed from) are kept for
    error messages and do not take part in equality.
    """

    kind: Literal["P", "E"]
    targets: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    target_columns: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if self.kind not in ("P", "E"):
            raise QueryError(f"a query is P(...) or E[...], got kind {self.kind!r}")
        if not self.targets:
            raise QueryError("a query needs at least one target, e.g. P(shape)")
        if self.kind == "E" and len(self.targets) != 1:
            raise QueryError(f"E[...] takes exactly one target, got {len(self.targets)}")
        for t in self.targets:
            _check_name(t, "a target")
        for c in self.conditions:
            if not isinstance(c, (Do, Assignment)):
                raise QueryError(f"a condition must be a Do or an Assignment, got {c!r}")

    @property
    def interventions(self) -> tuple[Assignment, ...]:
        """The assignments inside every ``do(...)``, in order."""
        return tuple(a for c in self.conditions if isinstance(c, Do) for a in c.assignments)

    @property
    def evidence(self) -> tuple[Assignment, ...]:
        """The top-level assignments (observations of the factual world), in order."""
        return tuple(c for c in self.conditions if isinstance(c, Assignment))

    def to_text(self) -> str:
        body = ", ".join(self.targets)
        if self.conditions:
            body += " | " + ", ".join(c.to_text() for c in self.conditions)
        return f"P({body})" if self.kind == "P" else f"E[{body}]"

    __str__ = to_text


# ---------------------------------------------------------------- builders

#: The image binding, for builders: ``P("X", do(shape="square"), X=img)``.
img = Binding("img")


def _value(v: object) -> Value:
    if isinstance(v, (Name, Number, Binding)):
        return v
    if isinstance(v, str):
        return Name(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return Number(v)
    raise QueryError(f"a value must be a name (str), a number or img, got {v!r}")


def _assignments(items: dict[str, object]) -> tuple[Assignment, ...]:
    return tuple(Assignment(k, _value(v)) for k, v in items.items())


def do(**assignments: object) -> Do:
    """An intervention: ``do(shape="square", scale=0.5)``."""
    return Do(_assignments(assignments))


def _split(args: tuple) -> tuple[tuple[str, ...], tuple[Condition, ...]]:
    targets = tuple(a for a in args if isinstance(a, str))
    conditions = tuple(a for a in args if not isinstance(a, str))
    if args[: len(targets)] != targets:
        raise QueryError("give the targets (strings) first, then the conditions")
    return targets, conditions


def P(*args: str | Condition, **evidence: object) -> Query:
    """A distribution: targets (str), then conditions; keyword arguments are evidence.

    >>> str(P("posY", do(scale=0.5, posX=0.2), shape="heart"))
    'P(posY | do(scale=0.5, posX=0.2), shape=heart)'
    """
    targets, conditions = _split(args)
    return Query("P", targets, conditions + _assignments(evidence))


def E(target: str, *conditions: Condition, **evidence: object) -> Query:
    """An expectation of one numeric factor: ``E("posY", do(scale=1.0))``."""
    return Query("E", (target,), tuple(conditions) + _assignments(evidence))
