"""Resolution: a syntax tree checked against a story, ready for the engine.

:func:`resolve` decides what a query means — each target a variable in a
*scenario* (a set of interventions over one draw of the noise; the factual
scenario has none), which factor classes its values name, which image ``img``
stands for, which rung of Pearl's ladder it stands on — and rejects
everything the engine cannot answer, pointing at the column:

- targets are factors, X or Z; ``E[...]`` needs one numeric factor;
- ``do()`` takes factors only (not X, the image; not Z, a continuous latent
  vector the query language has no values for);
- evidence is on factors or on X (``X=img``); Z cannot be observed;
- names and values come from the story's world: a categorical factor takes
  one of its labels (dSprites: shape takes square, ellipse or heart), a
  numeric one a number on its range, snapped to the nearest grid value, a
  continuous one any number in its interval, as it is (a float);
- an interval event (``intensity > 200``) compares a numeric or continuous
  factor's number, and so does interval evidence (``P(digit | intensity >
  200)``: particles outside the interval get weight 0); ``intensity=200`` of a continuous factor has probability
  0 and is refused, as is evidence on a continuous factor in another world;
- X takes the binding ``img``, which must be given (``--image`` on the CLI);
- a variable is intervened on at most once and observed at most once, and the
  factor evidence must have non-zero probability under the story.

A query without ``@`` is the query about one scenario: its targets are in the
top-level ``do(...)``'s scenario (the factual one without), and evidence is
about the factual scenario. The rung follows from the scenarios
(:func:`cvaeq.rung.rung`): ``P(shape)`` and ``P(shape | X=img)``
observational, ``P(shape | do(scale=1))`` interventional, ``P(posY |
do(scale=0.52), shape=heart)`` counterfactual (the evidence describes the
factual scenario, the target is in another).

>>> from cvaeq.story import load_story
>>> r = resolve(parse("P(posY | do(scale=0.52), shape=heart)"), load_story("default"))
>>> r.rung, r.interventions, r.evidence
('counterfactual', {'scale': 0}, {'shape': 2})
>>> r.variables
(ScenarioVariable(key='posY', variable='posY', scenario={'scale': 0}, value=None),)
>>> resolve(parse("P(shape)"), load_story("default")).rung
'observational'
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from ..errors import QueryError
from ..rung import Rung, rung
from ..story import IMAGE, LATENT, Story
from .parser import _error, parse
from .syntax import Assignment, At, Binding, Difference, Event, Name, Number, Query

__all__ = ["ResolvedQuery", "ScenarioVariable", "resolve", "Rung", "Kind"]

#: The former name of :data:`cvaeq.rung.Rung`.
Kind = Rung
#: Most (world-factor) combinations enumerated to check that evidence is possible.
_MAX_ENUMERATION = 2_000_000


@dataclass(frozen=True)
class ScenarioVariable:
    """A variable in one scenario (a set of interventions, :mod:`cvaeq.rung`), resolved.

    :ivar key: its text, e.g. ``"scale @ do(shape=square)"``, or the bare
        name when written without ``@``; the key of its answer in ``--json``.
    :ivar variable: the node (a factor, ``"X"`` or ``"Z"``).
    :ivar scenario: the scenario's interventions ``{factor: class}`` (empty:
        the factual scenario, the one the evidence describes; a continuous
        factor's value is a float).
    :ivar value: the class of an event or an observation; ``(op, number)``
        for an interval event (``intensity > 200``: ``(">", 200.0)``); None
        for a target whose distribution is asked.
    """

    key: str
    variable: str
    scenario: dict[str, int | float]
    value: int | float | tuple[str, float] | None = None


@dataclass(frozen=True, eq=False)
class ResolvedQuery:
    """A query the engine can answer: every target a variable in its scenario.

    ``text`` is the canonical query text; ``rung`` the rung of Pearl's ladder
    it stands on (:func:`cvaeq.rung.rung`); ``targets`` the targets' texts
    (factor names, ``"X"``, ``"Z"``, ``"scale @ do(shape=square)"``, ``"a - b"``);
    ``interventions`` maps a factor to the class the top-level ``do(...)`` sets
    it to; ``evidence`` maps a factor to its observed class and ``"X"`` to the
    bound image object exactly as given in ``bindings`` (e.g. a numpy array),
    both about the factual scenario and in the order the query wrote them.
    """

    text: str
    rung: Rung
    expectation: bool
    targets: tuple[str, ...]
    interventions: dict[str, int | float]
    evidence: dict[str, int | object]
    #: the variables of the targets in their scenarios (the two sides of a difference;
    #: a target without ``@`` is in the top-level do(...)'s scenario, the factual one without)…
    variables: tuple[ScenarioVariable, ...] = ()
    #: …observations in intervened scenarios (evidence written with ``@``)…
    scenario_evidence: tuple[ScenarioVariable, ...] = ()
    #: …whether the targets are events (the answer is the probability they all hold)…
    events: bool = False
    #: …and whether the target of E[...] is the difference of ``variables[0]`` and ``variables[1]``.
    difference: bool = False

    @property
    def kind(self) -> Rung:
        """The former name of :attr:`rung`."""
        return self.rung

    @property
    def plain(self) -> bool:
        """Whether the targets are plain variables of the top-level ``do(...)``'s scenario
        (keyed by their names; no ``@``, events or difference)."""
        return not (self.events or self.difference) and all(v.key == v.variable for v in self.variables)

    def with_targets(self, names: tuple[str, ...]) -> ResolvedQuery:
        """A :attr:`plain` query asking ``names`` (known variables) beside its targets, in the same scenario."""
        if not self.plain:
            raise QueryError(f"{self.text}: only a query without @, events or a difference takes more targets")
        added = tuple(ScenarioVariable(n, n, dict(self.interventions)) for n in names)
        return replace(self, targets=self.targets + names, variables=self.variables + added)


def resolve(query: Query, story: Story, bindings: Mapping[str, object] = MappingProxyType({})) -> ResolvedQuery:
    """Check ``query`` against ``story`` and turn its values into factor classes.

    ``bindings`` maps a binding name (``"img"``) to the object it stands for.
    Errors are :class:`~cvaeq.errors.QueryError` with the column of the
    offending token in the query's source text (for a tree built in Python,
    in its canonical text) and a ``caret`` attribute.
    """
    if query.source is None:  # built in Python: give it columns in its canonical text
        query = parse(query.to_text())
    text = query.source or query.to_text()

    def fail(message: str, column: int | None) -> QueryError:
        return _error(QueryError, message, column or 1, text)

    _refuse_do_beside_at(query, fail)
    written, events, difference = _target_variables(query, story.world, fail)
    interventions = _interventions(query.interventions, story.world, fail)
    variables = [_in_scenario(v, t, interventions, story.world, fail) for v, t in written]
    factual = tuple(a for a in query.evidence if not isinstance(a.variable, At) and a.op == "=")
    evidence = _evidence(factual, story, bindings, fail)
    _check_possible(factual, evidence, story, fail)
    observed = _scenario_evidence(query, story.world, fail)
    about_factual = bool(evidence) or any(not v.scenario for v in observed)  # interval evidence too
    return ResolvedQuery(
        text=query.to_text(),
        rung=rung([v.scenario for v in (*variables, *observed)], evidence=about_factual),
        expectation=query.kind == "E",
        targets=tuple(t if isinstance(t, str) else t.to_text() for t in query.targets),
        interventions=interventions,
        evidence=evidence,
        variables=tuple(variables),
        scenario_evidence=observed,
        events=events,
        difference=difference,
    )


def _evidence(written, story: Story, bindings, fail) -> dict[str, int | object]:
    """The factual evidence ``{variable: class or image}``, checked one by one."""
    world = story.world
    known = (*world.names, IMAGE, LATENT)
    evidence: dict[str, int | object] = {}
    seen: dict[str, Assignment] = {}
    for a in written:
        _known(a.variable, known, a.column, fail)
        if a.variable == LATENT:
            raise fail("Z is latent and cannot be observed; give evidence on X (X=img) or on factors", a.column)
        value = _image(a, bindings, fail) if a.variable == IMAGE else _factor_class(a, world, fail)
        if a.variable in seen:
            first = seen[a.variable]
            if first.value == a.value or (a.variable != IMAGE and evidence[a.variable] == value):
                raise fail(f"{a.variable} is observed twice; give each observation once", a.column)
            raise fail(
                f"contradictory evidence: {a.to_text()} but also {first.to_text()} "
                f"(column {first.column}); a variable has one factual value",
                a.column,
            )
        seen[a.variable] = a
        evidence[a.variable] = value
    return evidence


def _interventions(assignments, world, fail) -> dict[str, int | float]:
    """``{factor: class}`` of the settings of one do(...)."""
    FACTORS = world.names
    known = (*FACTORS, IMAGE, LATENT)
    interventions: dict[str, int | float] = {}
    for a in assignments:
        _known(a.variable, known, a.column, fail)
        if a.variable == IMAGE:
            raise fail(
                "cannot intervene on the image X: do() sets factors "
                f"({', '.join(FACTORS)}); to see the image under an intervention, make X the target",
                a.column,
            )
        if a.variable == LATENT:
            raise fail(
                f"cannot intervene on Z: it is a continuous latent vector the query language has no values for; "
                f"do() sets factors ({', '.join(FACTORS)})",
                a.column,
            )
        if a.variable in interventions:
            raise fail(f"{a.variable} is intervened on twice; set each variable once in do()", a.column)
        interventions[a.variable] = _factor_class(a, world, fail)
    return interventions


def _refuse_do_beside_at(query: Query, fail) -> None:
    """A top-level ``do(...)`` in a query naming scenarios with ``@`` would leave
    unclear which scenario a plain variable is in: refused."""
    top = [c for c in query.conditions if not isinstance(c, Assignment)]
    if top and _names_a_scenario(query):
        raise fail(
            "a query that names worlds with @ cannot also have a top-level do(...): it would be unclear "
            "which world a plain variable is in; write each variable's world with @ "
            "(a plain variable is in the factual world)",
            top[0].column,
        )


#: The scenario of a target written without ``@`` until the top-level do(...) is resolved.
_TOP: dict[str, int | float] = {}


def _variable(v, column, world, fail, scenario: dict[str, int | float]) -> ScenarioVariable:
    """``v`` (a name, or ``name @ do(...)``) checked, in its scenario (``scenario`` unless it has ``@``)."""
    name = v.variable if isinstance(v, At) else v
    col = v.column if isinstance(v, At) and v.column else column
    _known(name, (*world.names, IMAGE, LATENT), col, fail)
    if isinstance(v, At):
        return ScenarioVariable(v.to_text(), name, _interventions(v.scenario.assignments, world, fail))
    return ScenarioVariable(v, name, scenario)


def _valued(v: ScenarioVariable, a, role: str, world, fail) -> ScenarioVariable:
    """``v`` with the class ``a.value`` names: an event (``role``) or an observation."""
    if v.variable in (IMAGE, LATENT):
        what = "the image X" if v.variable == IMAGE else "the latent Z"
        raise fail(
            f"{role} on {what} in a world is not supported: {what} has no values to compare; "
            f"name factors ({', '.join(world.names)}) in events and in evidence about other worlds",
            a.column,
        )
    op = getattr(a, "op", "=")
    if op != "=":
        return _interval(v, a, world, fail)
    if world.factor(v.variable).continuous:
        hint = (
            f"ask an interval, e.g. P({v.key} > {a.value.to_text()})"
            if role == "event"
            else "give evidence on a continuous factor in the factual world only"
        )
        raise fail(f"{v.key} is continuous: {v.key}={a.value.to_text()} has probability 0; {hint}", a.column)
    value = _factor_class(Assignment(v.variable, a.value, column=a.column), world, fail)
    valued = ScenarioVariable(v.key, v.variable, v.scenario, value)
    if v.scenario is not _TOP:  # (a target without @ is checked once in its scenario: _in_scenario)
        _check_own_do(valued, a, role, world, fail)
    return valued


def _interval(v: ScenarioVariable, a, world, fail) -> ScenarioVariable:
    """An interval event ``v op number``: a numeric or continuous factor's number compared."""
    spec = world.factor(v.variable)
    if not spec.numeric:
        raise fail(
            f"{v.key} {a.op} ... compares numbers, and {v.variable} takes names ({spec.domain}); "
            f"ask P({v.key}=...) instead",
            a.column,
        )
    if not isinstance(a.value, Number):
        raise fail(f"{v.key} {a.op} ... compares with a number, got {a.value.to_text()}", a.value.column)
    return ScenarioVariable(v.key, v.variable, v.scenario, (a.op, float(a.value.value)))


def _check_own_do(v: ScenarioVariable, a, role: str, world, fail) -> None:
    """An event or an observation contradicting its own scenario's do() is impossible."""
    if isinstance(v.value, tuple):  # an interval event under its own do(): the engine decides it
        return
    if v.variable in v.scenario and v.scenario[v.variable] != v.value:
        raise fail(
            f"impossible {role}: {v.key} is {world.label(v.variable, v.scenario[v.variable])} "
            f"by its own do(), never {a.value.to_text()}",
            a.column,
        )


def _target_variables(query: Query, world, fail) -> tuple[list[tuple[ScenarioVariable, object]], bool, bool]:
    """The targets' variables, each with the target it is written in (one without
    ``@`` in the scenario ``_TOP``, for :func:`_in_scenario`); whether they are
    events; whether the target is a difference."""
    columns = query.target_columns or (None,) * len(query.targets)
    events = [isinstance(t, Event) for t in query.targets]
    if any(events) and not all(events):
        i = events.index(False) if events[0] else events.index(True)
        raise fail(
            "either every target is an event (v=value: the query asks the probability that they all hold) "
            "or none is (it asks their distributions); write P(a=1, b=2 | ...) or P(a, b | ...)",
            columns[i],
        )
    variables: list[ScenarioVariable] = []
    written: list[tuple[ScenarioVariable, object]] = []
    for t, column in zip(query.targets, columns):
        if isinstance(t, Difference):
            parts = [_variable(t.left, column, world, fail, _TOP), _variable(t.right, column, world, fail, _TOP)]
        elif isinstance(t, Event):
            parts = [_valued(_variable(t.target, column, world, fail, _TOP), t, "event", world, fail)]
        else:
            parts = [_variable(t, column, world, fail, _TOP)]
        for v in parts:
            _check_target(v, t, column, variables, query.kind, world, fail)
            variables.append(v)
            written.append((v, t))
    images = [v for v in variables if v.variable == IMAGE]
    if len(images) > 1:
        raise fail(
            "one image target per query: the answer draws the pictures of one world; "
            f"ask {images[0].key} and {images[1].key} in two queries (same --seed: the same particles)",
            columns[[v.key for v in variables].index(images[1].key)] if len(columns) == len(variables) else None,
        )
    difference = any(isinstance(t, Difference) for t in query.targets)
    return written, all(events) and bool(events), difference


def _check_target(v: ScenarioVariable, t, column, earlier, kind: str, world, fail) -> None:
    """One target variable against the query's kind (P or E) and the targets before it."""
    if kind == "E" and v.variable not in world.numeric:
        what = f"categorical: ask P({v.key} ...)" if v.variable in world.sizes else "not a number"
        raise fail(f"E[] needs a numeric factor ({', '.join(world.numeric)}); {v.key} is {what}", column)
    if any(
        o.variable == v.variable and o.scenario == v.scenario and (o.scenario is _TOP) == (v.scenario is _TOP)
        for o in earlier
    ):
        if isinstance(t, Difference):
            raise fail(
                f"{t.to_text()} is {v.key} minus itself: always 0; subtract the variable in another world", column
            )
        twice = " (or its world written twice)" if v.key != v.variable else ""
        raise fail(f"target {v.key} is listed twice{twice}; name each target once", column)


def _in_scenario(v: ScenarioVariable, written, interventions: dict[str, int | float], world, fail) -> ScenarioVariable:
    """A target written without ``@`` (in ``written``) in the top-level do(...)'s scenario (the
    factual one without): ``P(scale=1 | do(shape=square))`` is ``P(scale @ do(shape=square) = 1)``."""
    if v.scenario is not _TOP:
        return v
    placed = ScenarioVariable(v.key, v.variable, dict(interventions), v.value)
    if isinstance(written, Event):
        _check_own_do(placed, written, "event", world, fail)
    return placed


def _scenario_evidence(query: Query, world, fail) -> tuple[ScenarioVariable, ...]:
    """The observations the engine checks particle by particle: those written with ``@``
    (about intervened scenarios) and interval evidence (``intensity > 200``, in its scenario)."""
    observed: list[ScenarioVariable] = []
    for a in query.evidence:
        if not isinstance(a.variable, At) and a.op == "=":
            continue
        v = _valued(_variable(a.variable, a.column, world, fail, {}), a, "evidence", world, fail)
        for o in observed:
            if isinstance(o.value, tuple) or isinstance(v.value, tuple):
                continue  # intervals on one variable narrow each other (and an empty one is impossible)
            if o.variable == v.variable and o.scenario == v.scenario:
                if o.value == v.value:
                    raise fail(f"{v.key} is observed twice; give each observation once", a.column)
                raise fail(
                    f"contradictory evidence: {v.key} has two values; a variable has one value in a world", a.column
                )
        observed.append(v)
    return tuple(observed)


def _names_a_scenario(query: Query) -> bool:
    """Whether a target or an observation is written in a scenario, ``v @ do(...)``."""

    def at(v) -> bool:
        return isinstance(v, At)

    for t in query.targets:
        if (
            at(t)
            or (isinstance(t, Event) and at(t.target))
            or (isinstance(t, Difference) and (at(t.left) or at(t.right)))
        ):
            return True
    return any(at(a.variable) for a in query.evidence)


def _known(variable: str, VARIABLES: tuple[str, ...], column: int | None, fail) -> None:
    if variable not in VARIABLES:
        same_case = [v for v in VARIABLES if v.lower() == variable.lower()]
        close = same_case or difflib.get_close_matches(variable, VARIABLES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise fail(f"unknown variable {variable!r}; {hint}known: {', '.join(VARIABLES)}", column)


def _factor_class(a: Assignment, world, fail) -> int | float:
    """The class a value names for a factor (a.variable is a factor of ``world``)."""
    factor, value = a.variable, a.value
    spec = world.factor(factor)
    if spec.continuous:
        if isinstance(value, Number):
            if not spec.low <= value.value <= spec.high:
                raise fail(f"{factor}={value.to_text()} is off the domain; allowed: {spec.domain}", value.column)
            return value.value  # a continuous factor's value: a float, as it is
        what = "the image binding img" if isinstance(value, Binding) else f"the name {value.value!r}"
        raise fail(f"{factor} takes a number ({spec.domain}), got {what}", value.column)
    if not spec.numeric:
        labels = spec.labels
        if isinstance(value, Name):
            if value.value in labels:
                return labels.index(value.value)
            raise fail(f"unknown {factor} {value.value!r}; allowed: {', '.join(labels)}", value.column)
        if isinstance(value, Number) and value.to_text() in labels:  # labels that read as numbers
            return labels.index(value.to_text())
        what = "the image binding img" if isinstance(value, Binding) else f"the number {value.to_text()}"
        raise fail(f"{factor} takes a name ({', '.join(labels)}), got {what}", value.column)
    grid = spec.values
    domain = spec.domain
    if isinstance(value, Number):
        step = grid[1] - grid[0] if len(grid) > 1 else 1.0
        if not grid[0] - step / 2 <= value.value <= grid[-1] + step / 2:
            raise fail(f"{factor}={value.to_text()} is off the domain; allowed: {domain}", value.column)
        return int(np.argmin(np.abs(grid - value.value)))
    what = "the image binding img" if isinstance(value, Binding) else f"the name {value.value!r}"
    raise fail(f"{factor} takes a number from {domain}, got {what}", value.column)


def _image(a: Assignment, bindings: Mapping[str, object], fail) -> object:
    value = a.value
    if not isinstance(value, Binding):
        raise fail(
            f"X takes an image binding: write X=img and pass the image with --image, not {value.to_text()!r}",
            value.column,
        )
    if value.name not in bindings or bindings[value.name] is None:
        raise fail(f"no image is bound to {value.name}; pass --image PATH|FACTORS", value.column)
    return bindings[value.name]


def _check_possible(written: tuple[Assignment, ...], evidence: dict, story: Story, fail) -> None:
    """Factor evidence with probability 0 under the story is impossible: say so,
    naming a single observation when one alone is impossible."""
    SIZES, label = story.world.sizes, story.world.label
    observed = {f: c for f, c in evidence.items() if f in SIZES}
    for a in written:
        if (
            isinstance(a.variable, str)
            and a.variable in observed
            and not _possible({a.variable: observed[a.variable]}, story)
        ):
            raise fail(
                f"impossible evidence: {a.variable}={label(a.variable, observed[a.variable])} has probability 0 "
                f"under story {story.name!r}; no factual world matches it",
                a.column,
            )
    if len(observed) > 1 and not _possible(observed, story):
        given = ", ".join(f"{f}={label(f, c)}" for f, c in observed.items())
        first = next(a for a in written if a.variable in SIZES)
        raise fail(
            f"impossible evidence: {given} together have probability 0 under story {story.name!r}; "
            "no factual world matches them all",
            first.column,
        )


def _possible(observed: dict[str, int], story: Story) -> bool:
    """Whether P(observed factors) > 0 under the story.

    Only the observed factors' ancestors matter (the rest sums out to 1), so
    this enumerates their unobserved values; past ``_MAX_ENUMERATION`` rows
    (a world of many large factors) it answers True and leaves the check to
    the engine's weights.
    """
    FACTORS, SIZES = story.world.names, story.world.sizes
    nodes = set(observed)
    for f in observed:
        nodes |= story.graph.ancestors(f) & set(FACTORS)
    free = [f for f in FACTORS if f in nodes and f not in observed]
    if np.prod([float(SIZES[f]) for f in free]) > _MAX_ENUMERATION:
        return True
    grid = np.array(list(itertools.product(*(range(SIZES[f]) for f in free))), dtype=np.int64)
    classes = np.zeros((len(grid), len(FACTORS)), dtype=np.int64)
    for f, c in observed.items():
        classes[:, FACTORS.index(f)] = c
    for i, f in enumerate(free):
        classes[:, FACTORS.index(f)] = grid[:, i]
    p = np.ones(len(classes))
    for f in story.factors:
        if f in nodes:
            p *= story.probs(f, classes)[np.arange(len(classes)), classes[:, FACTORS.index(f)]]
    return bool(np.any(p > 0))
