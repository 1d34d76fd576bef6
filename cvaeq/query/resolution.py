"""Resolution: a syntax tree checked against a story, ready for the engine.

:func:`resolve` decides what a query means — which kind of question it asks,
which factor classes its values name, which image ``img`` stands for — and
rejects everything the engine cannot answer, pointing at the column:

- targets are factors, X or Z; ``E[...]`` needs one numeric factor;
- ``do()`` takes factors only (not X, the image; not Z, a continuous latent
  vector the query language has no values for);
- evidence is on factors or on X (``X=img``); Z cannot be observed;
- names and values come from the story's world: a categorical factor takes
  one of its labels (dSprites: shape takes square, ellipse or heart), a
  numeric one a number on its range, snapped to the nearest grid value;
- X takes the binding ``img``, which must be given (``--image`` on the CLI);
- a variable is intervened on at most once and observed at most once, and the
  factor evidence must have non-zero probability under the story.

The kind follows DESIGN.md §6: no evidence → ``"interventional"`` (the prior
when there is no ``do`` either); evidence without ``do`` →
``"observational"``; evidence with ``do`` → ``"counterfactual"`` (the
evidence describes the factual world).

>>> from cvaeq.story import load_story
>>> r = resolve(parse("P(posY | do(scale=0.52), shape=heart)"), load_story("default"))
>>> r.kind, r.interventions, r.evidence
('counterfactual', {'scale': 0}, {'shape': 2})
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping

import numpy as np

from ..errors import QueryError
from ..story import IMAGE, LATENT, Story
from .parser import _error, parse
from .syntax import Assignment, At, Binding, Difference, Event, Name, Number, Query

__all__ = ["ResolvedQuery", "WorldVariable", "resolve", "Kind"]

Kind = Literal["interventional", "observational", "counterfactual"]
#: Most (world-factor) combinations enumerated to check that evidence is possible.
_MAX_ENUMERATION = 2_000_000


@dataclass(frozen=True)
class WorldVariable:
    """A variable in one world, resolved.

    :ivar key: its canonical text, e.g. ``"scale @ do(shape=square)"``; the key
        of its answer in ``--json``.
    :ivar variable: the node (a factor, ``"X"`` or ``"Z"``).
    :ivar world: the world's interventions ``{factor: class}`` (empty: the
        factual world, the one the evidence describes).
    :ivar value: the class of an event or an observation; None for a target
        whose distribution is asked.
    """

    key: str
    variable: str
    world: dict[str, int]
    value: int | None = None


@dataclass(frozen=True, eq=False)
class ResolvedQuery:
    """A query the engine can answer.

    ``text`` is the canonical query text; ``targets`` are factor names, ``"X"``
    or ``"Z"``; ``interventions`` maps a factor to the class it is set to;
    ``evidence`` maps a factor to its observed class and ``"X"`` to the bound
    image object exactly as given in ``bindings`` (e.g. a numpy array). Both
    dicts keep the order the query wrote them in.
    """

    text: str
    kind: Kind
    expectation: bool
    targets: tuple[str, ...]
    interventions: dict[str, int]
    evidence: dict[str, int | object]
    #: Multi-world queries only (``@ do(...)``, events, differences; else empty):
    #: the variables of the targets in their worlds (the two sides of a difference)…
    worlds: tuple[WorldVariable, ...] = ()
    #: …observations in intervened worlds…
    world_evidence: tuple[WorldVariable, ...] = ()
    #: …whether the targets are events (the answer is the probability they all hold)…
    events: bool = False
    #: …and whether the target of E[...] is the difference of ``worlds[0]`` and ``worlds[1]``.
    difference: bool = False

    @property
    def multiworld(self) -> bool:
        """Whether the query talks about worlds by name (``@ do(...)``), events or differences."""
        return bool(self.worlds)


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

    world = story.world
    FACTORS = world.names
    known = (*FACTORS, IMAGE, LATENT)
    if query.multiworld:
        return _resolve_worlds(query, story, bindings, fail)
    targets = _targets(query, world, fail)
    interventions = _interventions(query.interventions, world, fail)

    evidence = _evidence(query.evidence, story, bindings, fail)
    _check_possible(query.evidence, evidence, story, fail)
    if not evidence:
        kind: Kind = "interventional"
    else:
        kind = "counterfactual" if interventions else "observational"
    return ResolvedQuery(
        text=query.to_text(),
        kind=kind,
        expectation=query.kind == "E",
        targets=targets,
        interventions=interventions,
        evidence=evidence,
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
            raise fail(
                "Z is latent and cannot be observed; give evidence on X (X=img) or on factors", a.column
            )
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


def _interventions(assignments, world, fail) -> dict[str, int]:
    """``{factor: class}`` of the settings of one do(...)."""
    FACTORS = world.names
    known = (*FACTORS, IMAGE, LATENT)
    interventions: dict[str, int] = {}
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


def _resolve_worlds(query: Query, story: Story, bindings, fail) -> ResolvedQuery:
    """A query naming worlds (``v @ do(...)``), events or a difference.

    Every world shares the noise abducted from the factual evidence; a plain
    variable is in the factual world. A top-level ``do(...)`` would leave
    unclear which world a plain variable is in, so it is refused here.
    """
    world = story.world
    FACTORS, NUMERIC = world.names, world.numeric
    known = (*FACTORS, IMAGE, LATENT)
    top = [c for c in query.conditions if not isinstance(c, Assignment)]
    named = _names_a_world(query)
    if top and named:
        raise fail(
            "a query that names worlds with @ cannot also have a top-level do(...): it would be unclear "
            "which world a plain variable is in; write each variable's world with @ "
            "(a plain variable is in the factual world)",
            top[0].column,
        )
    # No @ anywhere: events or a difference under a top-level do(...) are about
    # the intervened world, as the targets of a one-world query are
    # (P(scale=1 | do(shape=square)) is P(scale @ do(shape=square) = 1)).
    target_world = _interventions(query.interventions, world, fail) if top else {}

    def variable(v, column, role: str) -> WorldVariable:
        name = v.variable if isinstance(v, At) else v
        col = v.column if isinstance(v, At) and v.column else column
        _known(name, known, col, fail)
        w = _interventions(v.world.assignments, world, fail) if isinstance(v, At) else (
            dict(target_world) if role in ("target", "event") else {})
        key = v.to_text() if isinstance(v, At) else v
        return WorldVariable(key=key, variable=name, world=w)

    def same(a: WorldVariable, b: WorldVariable) -> bool:
        return a.variable == b.variable and a.world == b.world

    def valued(v: WorldVariable, a, role: str) -> WorldVariable:
        if v.variable in (IMAGE, LATENT):
            what = "the image X" if v.variable == IMAGE else "the latent Z"
            raise fail(f"{role} on {what} in a world is not supported: {what} has no values to compare; "
                       f"name factors ({', '.join(FACTORS)}) in events and in evidence about other worlds",
                       a.column)
        value = _factor_class(Assignment(v.variable, a.value, column=a.column), world, fail)
        if v.variable in v.world and v.world[v.variable] != value:
            raise fail(f"impossible {role}: {v.key} is {world.label(v.variable, v.world[v.variable])} "
                       f"by its own do(), never {a.value.to_text()}", a.column)
        return WorldVariable(v.key, v.variable, v.world, value)

    columns = query.target_columns or (None,) * len(query.targets)
    worlds: list[WorldVariable] = []
    events = [isinstance(t, Event) for t in query.targets]
    if any(events) and not all(events):
        i = events.index(False) if events[0] else events.index(True)
        raise fail(
            "either every target is an event (v=value: the query asks the probability that they all hold) "
            "or none is (it asks their distributions); write P(a=1, b=2 | ...) or P(a, b | ...)",
            columns[i],
        )
    difference = False
    for t, column in zip(query.targets, columns):
        if isinstance(t, Difference):
            difference = True
            parts = [variable(t.left, column, "target"), variable(t.right, column, "target")]
        elif isinstance(t, Event):
            parts = [valued(variable(t.target, column, "event"), t, "event")]
        else:
            parts = [variable(t, column, "target")]
        for wv in parts:
            if query.kind == "E" and wv.variable not in NUMERIC:
                what = f"categorical: ask P({wv.key} ...)" if wv.variable in world.sizes else "not a number"
                raise fail(f"E[] needs numeric factors ({', '.join(NUMERIC)}); {wv.key} is {what}", column)
            if any(same(wv, o) for o in worlds):
                if difference:
                    raise fail(f"{t.to_text()} is {wv.key} minus itself: always 0; "
                               "subtract the variable in another world", column)
                raise fail(f"target {wv.key} is listed twice (or its world written twice); name each target once",
                           column)
            worlds.append(wv)
    images = [w for w in worlds if w.variable == IMAGE]
    if len(images) > 1:
        raise fail("one image target per query: the answer draws the pictures of one world; "
                   f"ask {images[0].key} and {images[1].key} in two queries (same --seed: the same particles)",
                   columns[[w.key for w in worlds].index(images[1].key)] if len(columns) == len(worlds) else None)

    factual = [a for a in query.evidence if not isinstance(a.variable, At)]
    evidence = _evidence(factual, story, bindings, fail)
    _check_possible(tuple(factual), evidence, story, fail)
    world_evidence: list[WorldVariable] = []
    for a in query.evidence:
        if not isinstance(a.variable, At):
            continue
        wv = valued(variable(a.variable, a.column, "evidence"), a, "evidence")
        for o in world_evidence:
            if same(wv, o):
                if o.value == wv.value:
                    raise fail(f"{wv.key} is observed twice; give each observation once", a.column)
                raise fail(f"contradictory evidence: {wv.key} has two values; a variable has one value in a world",
                           a.column)
        world_evidence.append(wv)

    intervened = any(w.world for w in (*worlds, *world_evidence))
    if intervened and (evidence or world_evidence or len({tuple(sorted(w.world.items())) for w in worlds}) > 1):
        kind: Kind = "counterfactual"
    elif intervened:
        kind = "interventional"
    else:
        kind = "observational" if evidence else "interventional"
    return ResolvedQuery(
        text=query.to_text(),
        kind=kind,
        expectation=query.kind == "E",
        targets=tuple(t if isinstance(t, str) else t.to_text() for t in query.targets),
        interventions={},
        evidence=evidence,
        worlds=tuple(worlds),
        world_evidence=tuple(world_evidence),
        events=all(events),
        difference=difference,
    )


def _names_a_world(query: Query) -> bool:
    """Whether a target or an observation is written in a world, ``v @ do(...)``."""
    def at(v) -> bool:
        return isinstance(v, At)

    for t in query.targets:
        if at(t) or (isinstance(t, Event) and at(t.target)) or (isinstance(t, Difference) and (at(t.left) or at(t.right))):
            return True
    return any(at(a.variable) for a in query.evidence)


def _known(variable: str, VARIABLES: tuple[str, ...], column: int | None, fail) -> None:
    if variable not in VARIABLES:
        same_case = [v for v in VARIABLES if v.lower() == variable.lower()]
        close = same_case or difflib.get_close_matches(variable, VARIABLES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise fail(f"unknown variable {variable!r}; {hint}known: {', '.join(VARIABLES)}", column)


def _targets(query: Query, world, fail) -> tuple[str, ...]:
    columns = query.target_columns or (None,) * len(query.targets)
    NUMERIC = world.numeric
    for i, (t, column) in enumerate(zip(query.targets, columns)):
        _known(t, (*world.names, IMAGE, LATENT), column, fail)
        if t in query.targets[:i]:
            raise fail(f"target {t} is listed twice; name each target once", column)
        if query.kind == "E" and t not in NUMERIC:
            what = f"categorical: ask P({t} ...)" if t in world.sizes else "not a number"
            raise fail(
                f"E[] needs a numeric factor ({', '.join(NUMERIC)}); {t} is {what}",
                column,
            )
    return query.targets


def _factor_class(a: Assignment, world, fail) -> int:
    """The class a value names for a factor (a.variable is a factor of ``world``)."""
    factor, value = a.variable, a.value
    spec = world.factor(factor)
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
        if a.variable in observed and not _possible({a.variable: observed[a.variable]}, story):
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
