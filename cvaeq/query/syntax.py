"""The syntax tree of a query: frozen dataclasses that print back to text.

A query is ``P(targets | conditions)`` or ``E[target | conditions]``; a
condition is an intervention ``do(a=v, ...)`` or a piece of evidence ``a=v``.
A variable is a name or a name in an intervened world, :class:`At`
(``scale @ do(shape=square)``; in Python ``"scale" @ do(shape="square")``);
a target of ``P`` may be an :class:`Event` (``scale @ do(shape=square)=1``:
the query then asks the probability of all its events together) and the
target of ``E`` a :class:`Difference` of two variables.
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
>>> P(event("scale" @ do(shape="square"), 1), shape="heart", scale=0.5).to_text()
'P(scale @ do(shape=square) = 1.0 | shape=heart, scale=0.5)'

The tree is syntax only: whether a name is a known variable or a value on
its domain is decided by :func:`cvaeq.query.resolve` against a story.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from ..errors import QueryError

__all__ = [
    "Name",
    "Number",
    "Binding",
    "Value",
    "Assignment",
    "Do",
    "At",
    "Event",
    "Difference",
    "Variable",
    "Target",
    "Condition",
    "Query",
    "P",
    "E",
    "do",
    "img",
    "event",
    "observe",
    "diff",
    "variable_name",
    "RESERVED",
]

#: Words the grammar reads as keywords: ``do`` where a condition starts and
#: ``img`` where a value goes; there they cannot be names.
RESERVED = frozenset({"do", "img"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


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


Value = Name | Number | Binding


#: The comparisons of an interval event or interval evidence
#: (``op`` of :class:`Event` and :class:`Assignment` besides ``"="``).
COMPARISONS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Assignment:
    """``variable=value``: evidence at the top level, an intervention inside :class:`Do`.

    As evidence, ``variable`` may be an :class:`At`: an observation of what
    would have been, e.g. ``scale @ do(shape=square) = 1``; and with ``op``
    one of ``<``, ``<=``, ``>``, ``>=`` it is **interval evidence**, an
    observation that the variable's number lies on one side of a number
    (``intensity > 200``).
    """

    variable: str | At
    value: Value
    column: int | None = field(default=None, compare=False, repr=False)
    op: str = "="

    def __post_init__(self) -> None:
        if not isinstance(self.variable, At):
            _check_name(self.variable, "a variable", reserved="do")
        if not isinstance(self.value, (Name, Number, Binding)):
            raise QueryError(f"the value of {self.variable} must be a Name, Number or Binding, got {self.value!r}")
        if self.op != "=" and self.op not in COMPARISONS:
            raise QueryError(f"evidence's op is = or one of {', '.join(COMPARISONS)}, got {self.op!r}")
        if self.op != "=" and not isinstance(self.value, Number):
            raise QueryError(f"{_text(self.variable)} {self.op} ... compares with a number, got {self.value.to_text()}")

    def to_text(self) -> str:
        if self.op != "=":
            return f"{_text(self.variable)} {self.op} {self.value.to_text()}"
        if isinstance(self.variable, At):
            return f"{self.variable.to_text()} = {self.value.to_text()}"
        return f"{self.variable}={self.value.to_text()}"

    __str__ = to_text


@dataclass(frozen=True)
class Do:
    """``do(a=v, ...)``: one or several interventions.

    ``"scale" @ do(shape="square")`` is the variable scale in that scenario (:class:`At`).
    """

    assignments: tuple[Assignment, ...]
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignments", tuple(self.assignments))
        if not self.assignments or not all(isinstance(a, Assignment) for a in self.assignments):
            raise QueryError("do() needs one or more assignments, e.g. do(shape=square)")
        if any(isinstance(a.variable, At) for a in self.assignments):
            raise QueryError("do() sets plain variables (do(shape=square)), not variables in other worlds")
        if any(a.op != "=" for a in self.assignments):
            raise QueryError("do() sets a variable to a value (do(thickness=3)), not to an interval")

    def to_text(self) -> str:
        return "do(" + ", ".join(a.to_text() for a in self.assignments) + ")"

    def __rmatmul__(self, variable: object) -> At:
        if not isinstance(variable, str):
            return NotImplemented
        return At(variable, self)

    __str__ = to_text


@dataclass(frozen=True)
class At:
    """``variable @ do(...)``: the value ``variable`` would have taken, had the
    interventions of ``scenario`` been applied to the factual world, the one the
    evidence describes (a potential outcome, Pearl's Y_x; y0 writes ``Y @ X``).
    The docs of the query language call the scenario a world (:mod:`cvaeq.rung`).

    >>> At("scale", do(shape="square")).to_text()
    'scale @ do(shape=square)'
    >>> "scale" @ do(shape="square") == At("scale", do(shape="square"))
    True
    """

    variable: str
    scenario: Do
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.variable, "a variable", reserved="do")
        if not isinstance(self.scenario, Do):
            raise QueryError(f"the world of {self.variable} must be a do(...), got {self.scenario!r}")

    @property
    def world(self) -> Do:
        """The former name of :attr:`scenario`."""
        return self.scenario

    def to_text(self) -> str:
        return f"{self.variable} @ {self.scenario.to_text()}"

    __str__ = to_text


Variable = str | At


def variable_name(v: Variable) -> str:
    """The bare name of a variable (``scale`` for ``scale @ do(shape=square)``)."""
    return v.variable if isinstance(v, At) else v


def _text(v: Variable) -> str:
    return v if isinstance(v, str) else v.to_text()


@dataclass(frozen=True)
class Event:
    """A target ``variable=value`` of ``P``: the query asks for the probability
    that every event among its targets holds (e.g. PNS,
    ``P(scale @ do(shape=square) = 1, scale @ do(shape=heart) = 0.5)``).

    With ``op`` one of ``<``, ``<=``, ``>``, ``>=`` it is an **interval
    event** comparing the variable's number with ``value``:
    ``P(intensity > 200 | do(thickness=4))``.

    >>> Event("intensity", Number(200.0, "200"), op=">").to_text()
    'intensity > 200'
    """

    target: Variable
    value: Value
    column: int | None = field(default=None, compare=False, repr=False)
    op: str = "="

    def __post_init__(self) -> None:
        if not isinstance(self.target, At):
            _check_name(self.target, "a target")
        if not isinstance(self.value, (Name, Number, Binding)):
            raise QueryError(f"the value of {_text(self.target)} must be a Name, Number or Binding, got {self.value!r}")
        if self.op != "=" and self.op not in COMPARISONS:
            raise QueryError(f"an event's op is = or one of {', '.join(COMPARISONS)}, got {self.op!r}")
        if self.op != "=" and not isinstance(self.value, Number):
            raise QueryError(f"{_text(self.target)} {self.op} ... compares with a number, got {self.value.to_text()}")

    def to_text(self) -> str:
        if self.op != "=":
            return f"{_text(self.target)} {self.op} {self.value.to_text()}"
        sep = " = " if isinstance(self.target, At) else "="
        return f"{_text(self.target)}{sep}{self.value.to_text()}"

    __str__ = to_text


@dataclass(frozen=True)
class Difference:
    """``left - right``, the target of ``E[...]`` for contrasts such as the
    effect of treatment on the treated, ``E[Y @ do(x) - Y @ do(x') | x]``."""

    left: Variable
    right: Variable
    column: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for v in (self.left, self.right):
            if not isinstance(v, At):
                _check_name(v, "a variable")

    def to_text(self) -> str:
        return f"{_text(self.left)} - {_text(self.right)}"

    __str__ = to_text


Target = str | At | Event | Difference
Condition = Do | Assignment


@dataclass(frozen=True)
class Query:
    """A whole query. ``kind`` is ``"P"`` (distribution) or ``"E"`` (expectation,
    exactly one target); ``conditions`` keep the order they were written in.

    A target is a name (``"scale"``), an :class:`At`, an :class:`Event` (``P``
    only; then every target must be one) or a :class:`Difference` (``E``
    only). ``target_columns`` and ``source`` (the text it was parsed from) are
    kept for error messages and do not take part in equality.
    """

    kind: Literal["P", "E"]
    targets: tuple[Target, ...]
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
            if isinstance(t, str):
                _check_name(t, "a target")
            elif isinstance(t, Event) and self.kind != "P":
                raise QueryError(f"an event ({t.to_text()}) is a target of P(...), not of E[...]")
            elif isinstance(t, Difference) and self.kind != "E":
                raise QueryError(f"a difference ({t.to_text()}) is a target of E[...], not of P(...)")
            elif not isinstance(t, (At, Event, Difference)):
                raise QueryError(f"a target must be a name, an At, an Event or a Difference, got {t!r}")
        for c in self.conditions:
            if not isinstance(c, (Do, Assignment)):
                raise QueryError(f"a condition must be a Do or an Assignment, got {c!r}")

    @property
    def interventions(self) -> tuple[Assignment, ...]:
        """The assignments inside every ``do(...)``, in order."""
        return tuple(a for c in self.conditions if isinstance(c, Do) for a in c.assignments)

    @property
    def evidence(self) -> tuple[Assignment, ...]:
        """The top-level assignments (observations of the factual world, or of
        an intervened one for an :class:`At` variable), in order."""
        return tuple(c for c in self.conditions if isinstance(c, Assignment))

    def to_text(self) -> str:
        body = ", ".join(t if isinstance(t, str) else t.to_text() for t in self.targets)
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


def _is_target(a: object) -> bool:
    return isinstance(a, (str, At, Event))


def _split(args: tuple) -> tuple[tuple[Target, ...], tuple[Condition, ...]]:
    n = 0
    while n < len(args) and _is_target(args[n]):
        n += 1
    targets, conditions = tuple(args[:n]), tuple(args[n:])
    if any(_is_target(a) for a in conditions):
        raise QueryError(
            "give the targets (strings) first, then the conditions; a target may also be an At or an Event"
        )
    return targets, conditions


def event(target: Variable, value: object, op: str = "=") -> Event:
    """A target event: ``event("scale" @ do(shape="square"), 1)``; an interval
    event with ``op``: ``event("intensity", 200, ">")``."""
    return Event(target, _value(value), op=op)


def observe(variable: Variable, value: object, op: str = "=") -> Assignment:
    """Evidence, also in an intervened world: ``observe("scale" @ do(shape="square"), 1)``;
    interval evidence with ``op``: ``observe("intensity", 200, ">")``."""
    return Assignment(variable, _value(value), op=op)


def diff(left: Variable, right: Variable) -> Difference:
    """The target ``left - right`` of ``E[...]``."""
    return Difference(left, right)


def P(*args: Target | Condition, **evidence: object) -> Query:
    """A distribution: targets (str, :class:`At` or :class:`Event`), then
    conditions; keyword arguments are evidence.

    >>> str(P("posY", do(scale=0.5, posX=0.2), shape="heart"))
    'P(posY | do(scale=0.5, posX=0.2), shape=heart)'
    >>> str(P("scale", "scale" @ do(shape="square"), shape="heart"))
    'P(scale, scale @ do(shape=square) | shape=heart)'
    """
    targets, conditions = _split(args)
    return Query("P", targets, conditions + _assignments(evidence))


def E(target: str | At | Difference, *conditions: Condition, **evidence: object) -> Query:
    """An expectation of one numeric factor (or a difference): ``E("posY", do(scale=1.0))``."""
    return Query("E", (target,), tuple(conditions) + _assignments(evidence))
