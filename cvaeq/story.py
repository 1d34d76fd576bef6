"""Causal stories: a DAG over a world's factors and their true distributions.

A story is a TOML file (see ``cvaeq/worlds/dsprites/default.toml``, whose
comments describe the format). It names its world (``world = "NAME"``;
``"dsprites"`` when absent, so every story written before worlds still loads)
and declares every factor of that world. Loading validates it completely;
anything wrong is a :class:`~cvaeq.errors.StoryError` naming the file, the
node, the world's names and values, and the fix.

>>> story = load_story("default")
>>> story.parents("scale")
('shape',)
>>> story.table("scale").shape
(3, 6)
>>> story.graph.parents("X")
('shape', 'scale', 'orientation', 'posX', 'posY', 'Z')
>>> story.world.name
'dsprites'
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CvaeqError, GraphError, StoryError
from .graph import CausalGraph
from .invertible import Law, LawError, Learn, kind_of, law_contribution, learn_spec
from .limits import MAX_STORY_BYTES, read_limited
from .paths import safe_name
from .plugins import get_stories
from .walk import Policy, Root, Site, View, walk
from .world import DEFAULT_WORLD, World, get_world

__all__ = ["Story", "load_story", "story_source", "story_from_text", "safe_name", "IMAGE", "LATENT"]

IMAGE = "X"
LATENT = "Z"
#: The keys a story may have at the top level, and in each ``[factors.NAME]`` table.
TOP_KEYS = ("name", "world", "latent_dim", "factors")
FACTOR_KEYS = ("parents", "probs", "normal", "continuous", "mechanism")
#: Largest latent dimension a story may ask for (the shipped model has 6).
MAX_LATENT_DIM = 1024


@dataclass(frozen=True, eq=False)
class Story:
    """A validated story: its world, graph, factor tables and the latent's dimension.

    ``tables[f]`` has shape ``(*parent sizes, size of f)`` (parents in the order
    of :meth:`parents`) and sums to 1 over its last axis; a continuous factor
    has instead a law, ``laws[f]`` (:class:`cvaeq.invertible.Law`: ``value =
    offset + gain * link(bias + weighted parents + scale * noise)``).
    ``classes`` arrays are ``(N, F)`` in the world's factor order
    (``world.names``): int64 classes, or float64 values when the world has a
    continuous factor (its discrete columns then hold whole classes).
    """

    name: str
    source: str
    text: str
    graph: CausalGraph
    tables: dict[str, np.ndarray]
    latent_dim: int
    _parents: dict[str, tuple[str, ...]] = field(repr=False)
    #: ``{factor: mechanism family}`` from each factor's optional ``mechanism``
    #: key; factors that name none use ``"gumbel_max"`` (see cvaeq.scm.build_scm).
    mechanisms: dict[str, str] = field(default_factory=dict)
    #: the :class:`~cvaeq.world.World` whose factors the story is about.
    world: World = field(default=None, repr=False)  # type: ignore[assignment]
    #: ``{factor: law}`` of its continuous factors (``[factors.NAME.continuous]``); a learned
    #: factor's is its guess (the numbers its table gives, the defaults for the rest).
    laws: dict[str, Law] = field(default_factory=dict)
    #: ``{factor: Learn}`` of the continuous factors whose law is to be learned from data
    #: (``learn = true``): the form the fit keeps (:func:`cvaeq.invertible.fit_laws`).
    learned: dict[str, Learn] = field(default_factory=dict)

    @property
    def factors(self) -> tuple[str, ...]:
        """The world's factors (discrete and continuous) in topological order."""
        names = set(self.world.names)
        return tuple(n for n in self.graph.order if n in names)

    def law(self, factor: str) -> Law:
        """The law of a continuous factor (a StoryError for a factor with a table, or for
        one whose law is learned and that the story gives no guess for: :meth:`check_known`)."""
        if factor not in self.laws:
            raise StoryError(f"factor {factor!r} has a probability table, not a continuous law; see story.table")
        self.check_known((factor,))
        return self.laws[factor]

    def with_laws(self, laws: dict[str, Any] | None) -> Story:
        """This story with fitted laws in place of its own (``{continuous factor: Law or
        law table}``, what :func:`cvaeq.invertible.fit_laws` gives and a checkpoint records):
        the story as a model trained on it knows it, so that its sampler and density
        follow the fitted laws. Itself when ``laws`` is empty; its text stays the story's.

        >>> story = load_story("morphomnist")
        >>> table = {"link": "identity", "bias": 3.0, "scale": 0.5, "noise": "normal"}
        >>> story.with_laws({"thickness": table}).law("thickness").bias, story.law("thickness").bias
        (3.0, 0.0)
        """
        if not laws:
            return self
        from dataclasses import replace

        new_laws, learned = dict(self.laws), dict(self.learned)
        for f, law in laws.items():
            if f not in self.laws:
                raise StoryError(f"a fitted law for {f!r}, which is not a continuous factor of story {self.name!r}")
            if not isinstance(law, Law):
                table = {k: v for k, v in dict(law).items() if k != "parents"}
                law = Law.from_dict(table, self.parents(f))
            new_laws[f] = law
            if f in learned:  # its numbers are known now
                learned[f] = replace(learned[f], guess=True)
        return replace(self, laws=new_laws, learned=learned)

    def check_known(self, factors=None) -> None:
        """A StoryError naming the fix if one of ``factors`` (default: all) has a law to be
        learned (``learn = true``) and the story states no guess at its numbers: such a law
        is known only once a model has fitted it (its checkpoint records it)."""
        for f in self.factors if factors is None else factors:
            learn = self.learned.get(f)
            if learn is not None and not learn.guess:
                raise StoryError(
                    f"{self.source}: the law of {f!r} is learned from data (learn = true) and the story gives no "
                    f"numbers for it: use a model trained on this story (`cvaeq train --story ...`; its checkpoint "
                    f"records the fitted law), or state a guess (bias, weights, scale) in [factors.{f}.continuous]"
                )

    def kinds(self, factor: str) -> dict[str, object]:
        """``{parent: kind}`` of a factor's parents (:func:`cvaeq.invertible.kind_of`)."""
        return {p: kind_of(self.world.factor(p)) for p in self.parents(factor)}

    def _repr_svg_(self) -> str:
        """How a notebook shows the story: its DAG (:func:`cvaeq.display.story_svg`)."""
        from .display import story_svg

        return story_svg(self)

    def parents(self, factor: str) -> tuple[str, ...]:
        """Parents of a factor, X or Z."""
        if factor in self._parents:
            return self._parents[factor]
        return self.graph.parents(factor)

    def table(self, factor: str) -> np.ndarray:
        """P(factor | parents) as an array ``(*parent sizes, size)`` (a discrete factor's)."""
        if factor not in self.tables:
            raise StoryError(f"factor {factor!r} is continuous: it has a law (story.law), not a table")
        return self.tables[factor]

    def probs(self, factor: str, classes: np.ndarray) -> np.ndarray:
        """``(N, size)`` rows of P(factor | parents) for ``(N, F)`` classes."""
        names = self.world.names
        idx = tuple(np.asarray(classes[:, names.index(p)]).astype(np.int64) for p in self.parents(factor))
        table = self.table(factor)
        return table[idx] if idx else np.broadcast_to(table, (len(classes), table.shape[-1]))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, F)`` int64 factor classes (the world's order) drawn from the story;
        float64 values when the world has a continuous factor.

        Each discrete factor is ``argmax(log P(f | parents) + Gumbel)``, each
        continuous one its law at a draw of its noise: the story read as a
        structural causal model, walked (:func:`cvaeq.walk.walk`) with numpy's
        ``rng`` drawing the noise.
        """
        self.check_known()
        names = self.world.names
        out = np.zeros((n, len(names)), dtype=np.float64 if self.laws else np.int64)
        factors = View(self.factors, {f: Root(self.parents(f)) for f in self.factors})
        for f, classes in walk(factors, _GumbelDraws(self, rng), n).values.items():
            out[:, names.index(f)] = classes
        return out

    def same_as(self, other: Story) -> bool:
        """Whether ``other`` tells the same story: name, world, latent, graph,
        tables and mechanisms (comments and layout of the text aside).

        >>> load_story("default").same_as(story_from_text(load_story("default").text + "# a comment"))
        True
        """
        return (
            self.name == other.name
            and self.world.name == other.world.name
            and self.latent_dim == other.latent_dim
            and self.mechanisms == other.mechanisms
            and set(self.tables) == set(other.tables)
            and self.laws == other.laws
            and self.learned == other.learned
            and all(self.parents(f) == other.parents(f) for f in self.laws)
            and all(
                self.parents(f) == other.parents(f) and np.array_equal(self.tables[f], other.tables[f])
                for f in self.tables
            )
        )

    def log_prob(self, classes: np.ndarray) -> np.ndarray:
        """``(N,)`` log P(factors) of ``(N, F)`` classes under the story (a
        continuous factor adds its log-density: float64 values then)."""
        self.check_known()
        classes = np.asarray(classes, dtype=np.float64 if self.laws else np.int64)
        names = self.world.names
        total = np.zeros(len(classes))
        for f in self.factors:
            if f in self.laws:
                law = self.laws[f]
                given = {p: classes[:, names.index(p)] for p in self.parents(f)}
                total += law.log_prob(classes[:, names.index(f)], law.terms(given, self.kinds(f)))
                continue
            p = self.probs(f, classes)[np.arange(len(classes)), classes[:, names.index(f)].astype(np.int64)]
            with np.errstate(divide="ignore"):  # impossible under the story -> -inf
                total += np.log(p)
        return total


class _GumbelDraws(Policy):
    """Each factor's class ``argmax(log table row + Gumbel)``, the Gumbel noise from ``rng``."""

    def __init__(self, story: Story, rng: np.random.Generator) -> None:
        self.story, self.rng = story, rng

    def visit(self, site: Site) -> None:
        if site.node in self.story.laws:  # a continuous factor: its law at a draw of its noise
            law = self.story.laws[site.node]
            noise = law.noise.sample(self.rng, site.num)
            site.value = law.assign(law.terms(site.parents, self.story.kinds(site.node)), noise)
            return
        table = self.story.tables[site.node]
        idx = tuple(np.asarray(v).astype(np.int64) for v in site.parents.values())  # in the table's axes' order
        probs = table[idx] if idx else np.broadcast_to(table, (site.num, table.shape[-1]))
        with np.errstate(divide="ignore"):  # probability 0 -> log 0 = -inf: never drawn
            logp = np.log(probs)
        site.value = np.argmax(logp + self.rng.gumbel(size=logp.shape), axis=1)


def load_story(source: str | os.PathLike = "default") -> Story:
    """A story by registered name (``"default"``) or by path to a TOML file.

    Which one ``source`` means is decided here, for the CLI's ``--story`` and
    every Python call alike (:func:`story_source`): a :class:`~pathlib.Path`,
    or a string that looks like a path (it contains a ``/`` or ends in
    ``.toml``), is a file; a bare name is a registered story, so a folder or
    file that happens to have a story's name in the working directory (say
    ``pendulum/``, written by ``--out pendulum/``) never replaces it. A bare
    name that names no registered story but an existing file is that file. A
    bare name that is both a registered story and a file is refused: write
    ``./NAME`` for the file.

    >>> load_story("pendulum").world.name
    'pendulum'
    """
    kind, where = story_source(source)
    label = where if kind == "file" else str(source)
    return story_from_text(_read_text(Path(where), label), source=label)


def story_source(source: str | os.PathLike) -> tuple[str, str]:
    """``("file", path)`` or ``("registered", path of the story's file)``:
    what ``source`` names under :func:`load_story`'s rule; a
    :class:`~cvaeq.errors.StoryError` saying what to write when it names
    nothing or is ambiguous."""
    if isinstance(source, os.PathLike):
        return "file", os.fspath(source)
    if not isinstance(source, str):
        raise StoryError(
            f"a story is a registered name or a path to a TOML file, not {type(source).__name__} {source!r}"
        )
    text = source
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if any(sep in text for sep in seps) or text.endswith(".toml"):
        return "file", text
    stories = get_stories()
    here = Path(text)
    if text in stories:
        if here.is_file():
            raise StoryError(
                f"{text!r} is both a registered story and a file in the working folder; "
                f"write ./{text} for the file, or rename the file to use the registered story"
            )
        return "registered", str(stories[text])
    if here.is_file():
        return "file", text
    known = ", ".join(sorted(stories))
    if here.exists():
        raise StoryError(f"{text!r} is a folder, not a story; known stories: {known}, or give a path to a .toml file")
    raise StoryError(f"unknown story {text!r}; known: {known}, or give a path to a .toml file")


def _read_text(path: Path, source: str) -> str:
    """A story file's text: a regular file of at most ``MAX_STORY_BYTES``, UTF-8."""
    blob = read_limited(path, "story", MAX_STORY_BYTES, StoryError, "pass a TOML file or a story name")
    return _decode(blob, source)


def _decode(blob: bytes, source: str) -> str:
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise StoryError(f"{source}: not UTF-8 text (byte {e.start}); save the story as UTF-8") from None


def story_from_text(text: str, source: str = "<story>") -> Story:
    """Parse and validate a story's TOML text; ``source`` names it in errors."""
    doc = _toml(text, source)
    world, factors, latent_dim = _header(doc, source)

    def fail(node: str, what: str) -> StoryError:
        return StoryError(f"{source}: factor {node!r}: {what}")

    parents, mechanisms = _parents_and_mechanisms(world, factors, fail)
    edges = [(p, f) for f in world.names for p in parents[f]]
    edges += [(f, IMAGE) for f in world.names] + [(LATENT, IMAGE)]
    try:
        graph = CausalGraph(edges, nodes=(LATENT, *world.names, IMAGE))
    except GraphError as e:
        raise StoryError(f"{source}: {e}; remove one of these parent links") from None
    tables = {f: _table(world, f, factors[f], parents[f], fail) for f in world.discrete}
    laws, learned = {}, {}
    for f in world.continuous:
        laws[f], learn = _law(world, f, factors[f], parents[f], fail)
        if learn is not None:
            learned[f] = learn
    return Story(
        name=str(doc.get("name", Path(source).stem)),
        source=source,
        text=text,
        graph=graph,
        tables=tables,
        latent_dim=latent_dim,
        _parents=parents,
        mechanisms=mechanisms,
        world=world,
        laws=laws,
        learned=learned,
    )


def _law(world: World, f: str, spec: dict[str, Any], parents: tuple[str, ...], fail) -> tuple[Law, Learn | None]:
    """A continuous factor's ``[factors.F.continuous]`` law, checked against its parents' kinds,
    and what the table leaves to be learned (``learn = true``; None when the law is stated)."""
    forms = [k for k in ("probs", "normal") if k in spec]
    if forms or "continuous" not in spec:
        raise fail(
            f,
            f"{f} is continuous ({world.factor(f).domain}): give its law as a [factors.{f}.continuous] table "
            "(value = offset + gain * link(bias + weights . parents + scale * noise)), not probs or [normal]",
        )
    try:
        learn, table = learn_spec(spec["continuous"])  # a continuous factor's world has labelled pictures
        law = Law.from_dict(table, parents)
        for p in parents:  # each weight of the right form for its parent (a number, or a number per label)
            kind = kind_of(world.factor(p))
            law_contribution(law, p, np.zeros(1, dtype=np.int64), kind)
            if isinstance(kind, tuple) and isinstance(law.weights.get(p), dict):
                extra = [k for k in law.weights[p] if k not in kind]
                if extra:
                    raise LawError(f"unknown value {extra[0]!r} of {p!r} in weights; allowed: {', '.join(kind)}")
    except LawError as e:
        raise fail(f, f"[continuous]: {e}") from None
    return law, learn


def _toml(text: str, source: str) -> dict[str, Any]:
    """A story's TOML text read into tables, at most ``MAX_STORY_BYTES`` characters."""
    if not isinstance(text, str) or len(text) > MAX_STORY_BYTES:
        raise StoryError(f"{source}: a story is TOML text of at most {MAX_STORY_BYTES:,} characters")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StoryError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:
        raise StoryError(f"{source}: arrays or tables nested too deeply; a story needs a few levels") from None


def _header(doc: dict[str, Any], source: str) -> tuple[World, dict[str, Any], int]:
    """A story's world, its ``[factors]`` table (every factor of the world, no other) and ``latent_dim``."""
    unknown_keys = sorted(set(doc) - set(TOP_KEYS))
    if unknown_keys:
        raise StoryError(f"{source}: unknown key {unknown_keys[0]!r}; a story's keys are {', '.join(TOP_KEYS)}")
    if not isinstance(doc.get("name", ""), str):
        raise StoryError(f'{source}: name must be a string, e.g. name = "mine"')
    world_name = doc.get("world", DEFAULT_WORLD)
    if not isinstance(world_name, str):
        raise StoryError(f'{source}: world must be the name of a world, e.g. "{DEFAULT_WORLD}"')
    try:
        world = get_world(world_name)
    except CvaeqError as e:
        raise StoryError(f"{source}: {e}") from None
    names = world.names
    factors = doc.get("factors")
    if not isinstance(factors, dict):
        raise StoryError(f"{source}: no [factors] table; declare each of {', '.join(names)} as [factors.NAME]")
    unknown = [f for f in factors if f not in world.names]
    if unknown:
        raise StoryError(
            f"{source}: unknown factor {unknown[0]!r}; the factors of world {world.name!r} are {', '.join(names)}"
        )
    missing = [f for f in names if f not in factors]
    if missing:
        raise StoryError(f"{source}: factor {missing[0]!r} is not declared; add a [factors.{missing[0]}] table")
    latent_dim = doc.get("latent_dim", 4)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or not 1 <= latent_dim <= MAX_LATENT_DIM:
        raise StoryError(f"{source}: latent_dim must be an integer from 1 to {MAX_LATENT_DIM}, got {latent_dim!r}")
    return world, factors, latent_dim


def _parents_and_mechanisms(
    world: World, factors: dict[str, Any], fail
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Each factor's parents, and the mechanism family of those that name one."""
    names, sizes = world.names, world.sizes
    parents: dict[str, tuple[str, ...]] = {}
    mechanisms: dict[str, str] = {}
    for f in names:
        spec = factors[f]
        if not isinstance(spec, dict):
            raise fail(f, "must be a table ([factors.NAME] with parents and probs or normal)")
        extra = sorted(set(spec) - set(FACTOR_KEYS))
        if extra:
            raise fail(f, f"unknown key {extra[0]!r}; a factor's keys are {', '.join(FACTOR_KEYS)}")
        ps = spec.get("parents", [])
        if not isinstance(ps, list) or not all(isinstance(p, str) for p in ps):
            raise fail(f, "parents must be a list of factor names")
        for p in ps:
            if p not in names:
                raise fail(f, f"unknown parent {p!r}; parents must be among {', '.join(names)}")
            if p not in sizes and f in sizes:
                raise fail(
                    f,
                    f"parent {p!r} is continuous, and a factor with classes cannot have a continuous parent "
                    f"(its table has a row per parent class); make {f} continuous or drop {p} from its parents",
                )
        if len(set(ps)) != len(ps):
            raise fail(f, "a parent is listed twice")
        parents[f] = tuple(ps)
        if "mechanism" in spec:
            if not isinstance(spec["mechanism"], str) or not spec["mechanism"]:
                raise fail(f, 'mechanism must be the name of a mechanism family, e.g. "gumbel_max"')
            mechanisms[f] = spec["mechanism"]
    return parents, mechanisms


def _table(world: World, f: str, spec: dict[str, Any], parents: tuple[str, ...], fail) -> np.ndarray:
    SIZES, label = world.sizes, world.label
    size = SIZES[f]
    shape = tuple(SIZES[p] for p in parents) + (size,)
    forms = [k for k in ("probs", "normal") if k in spec]
    if len(forms) != 1:
        raise fail(f, "give exactly one of `probs` or `[normal]`")
    if "normal" in spec:
        table = _normal_table(world, f, spec["normal"], parents, fail)
    else:
        probs = spec["probs"]
        if probs == "uniform":
            table = np.full(shape, 1.0 / size)
        elif isinstance(probs, dict):
            if len(parents) != 1:
                raise fail(f, "a table keyed by parent values needs exactly one parent; use nested lists")
            (p,) = parents
            labels = [label(p, c) for c in range(SIZES[p])]
            extra = [k for k in probs if k not in labels]
            if extra:
                raise fail(f, f"unknown value {extra[0]!r} of parent {p!r}; allowed: {', '.join(labels)}")
            absent = [k for k in labels if k not in probs]
            if absent:
                raise fail(f, f"no row for {p}={absent[0]}; give one row per value of {p}")
            table = _array(f, [probs[k] for k in labels], shape, fail)
        else:
            table = _array(f, probs, shape, fail)
    if np.any(table < 0) or not np.all(np.isfinite(table)):
        raise fail(f, "probabilities must be finite and non-negative")
    sums = table.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        bad = np.unravel_index(np.argmax(np.abs(sums - 1.0)), sums.shape)
        where = ", ".join(f"{p}={label(p, int(c))}" for p, c in zip(parents, bad)) or "the root row"
        raise fail(f, f"probabilities for {where} sum to {sums[bad]:.6g}, not 1; rescale that row")
    return table


def _numbers_only(value) -> bool:
    """Whether nested lists hold only numbers (not booleans, strings or tables)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
    return True


def _array(f, probs, shape, fail) -> np.ndarray:
    if not _numbers_only(probs):
        raise fail(f, 'probs must be numbers (nested lists of equal lengths), or "uniform"')
    try:
        table = np.asarray(probs, dtype=np.float64)
    except (ValueError, TypeError):
        raise fail(f, "probs must be numbers (nested lists of equal lengths)") from None
    if table.shape != shape:
        raise fail(f, f"probs has shape {table.shape}, expected {shape} (parent sizes, then {shape[-1]} values)")
    return table


def _law_value(world: World, name: str, law, args: list[float], fail, f: str) -> float:
    """``law.fn(*args)``, a world plugin's code, checked: a finite number, or a
    StoryError naming the law, its world and what it gave."""
    try:
        value = law.fn(*args)
    except Exception as e:  # the plugin's bug: one line naming it, not a traceback
        raise fail(
            f,
            f"law {name!r} of world {world.name!r} failed at {tuple(args)}: {type(e).__name__}: {e}; "
            "fix the world's plugin",
        ) from None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise fail(
            f,
            f"law {name!r} of world {world.name!r} gave {value!r} at {tuple(args)}, not a finite number; "
            "fix the world's plugin",
        )
    return float(value)


#: ``[normal]`` tables already built, by (world, factor, parents, law, the form's TOML as JSON). Every
#: ``ask`` reads its story's text again (:func:`load_story`), and a table with a world's law is a
#: Python loop over its parents' classes (the pendulum's two shadow tables: 882 rows, 24 ms of the
#: 80 ms a colour image counterfactual took); it is a function of its key alone. At most
#: :data:`_NORMAL_TABLES_MAX`, the oldest dropped first; each caller gets its own copy.
_NORMAL_TABLES: dict[tuple, np.ndarray] = {}
_NORMAL_TABLES_MAX = 64
#: the server reads stories from several threads at once
_NORMAL_TABLES_LOCK = threading.Lock()


def _normal_table(world: World, f: str, spec: dict[str, Any], parents: tuple[str, ...], fail) -> np.ndarray:
    """:func:`_normal`'s table, built once per key (:data:`_NORMAL_TABLES`); a copy.

    >>> a = load_story("pendulum").table("shadow_length")
    >>> b = load_story("pendulum").table("shadow_length")
    >>> a is not b and bool((a == b).all())
    True
    """
    law = spec.get("law")
    try:  # the law's object too: a world's laws are a dict, which a test (or a session) may change
        key = (world, f, parents, world.laws.get(law) if isinstance(law, str) else None,
               json.dumps(spec, sort_keys=True, allow_nan=False))  # fmt: skip
        with _NORMAL_TABLES_LOCK:
            table = _NORMAL_TABLES.get(key)
    except (TypeError, ValueError):  # a TOML date, a number JSON cannot write, a law not hashable: built afresh
        return _normal(world, f, spec, parents, fail)
    if table is None:
        table = _normal(world, f, spec, parents, fail)
        with _NORMAL_TABLES_LOCK:
            while len(_NORMAL_TABLES) >= _NORMAL_TABLES_MAX:
                _NORMAL_TABLES.pop(next(iter(_NORMAL_TABLES)))
            _NORMAL_TABLES[key] = table
    return table.copy()


def _normal(world: World, f: str, spec: dict[str, Any], parents: tuple[str, ...], fail) -> np.ndarray:
    """The table of a ``[normal]`` form: per parent row, a normal over ``f``'s grid (mean from
    ``mean``, ``coef``, ``offset`` and ``law``), mixed with ``floor`` of the uniform."""
    if f not in world.numeric:
        raise fail(f, f"a normal form needs a numeric factor; give `probs` for {f}")
    allowed = {"mean", "sd", "coef", "offset", "floor", "law"}
    extra = set(spec) - allowed
    if extra:
        raise fail(f, f"unknown key {sorted(extra)[0]!r} in [normal]; allowed: {', '.join(sorted(allowed))}")
    sd, mean0, floor, coef, offset = _normal_numbers(world, f, spec, parents, fail)
    law = _normal_law(world, f, spec, parents, fail)
    for p, row in offset.items():
        labels = [world.label(p, c) for c in range(world.sizes[p])]
        extra_values = [k for k in row if k not in labels]
        if extra_values:
            raise fail(f, f"unknown value {extra_values[0]!r} of {p!r} in offset; allowed: {', '.join(labels)}")
    sizes, values = world.sizes, world.values
    grid = values[f]
    table = np.empty(tuple(sizes[p] for p in parents) + (len(grid),))
    for combo in itertools.product(*(range(sizes[p]) for p in parents)):
        mean = mean0
        for p, c in zip(parents, combo):
            if p in coef:
                mean += float(coef[p]) * float(values[p][c])  # Python floats: overflow is inf, not a warning
            if p in offset:
                mean += float(offset[p].get(world.label(p, c), 0.0))
        if law is not None:
            at = dict(zip(parents, combo))
            mean += _law_value(world, spec["law"], law, [float(values[a][at[a]]) for a in law.args], fail, f)
        table[combo] = _normal_row(world, f, grid, mean, sd, floor, fail)
    return table


def _normal_numbers(
    world: World, f: str, spec: dict[str, Any], parents: tuple[str, ...], fail
) -> tuple[float, float, float, dict[str, Any], dict[str, Any]]:
    """``[normal]``'s ``sd``, ``mean``, ``floor``, ``coef`` and ``offset``, checked (not yet the offsets' labels)."""

    def number(value, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise fail(f, f"{what} in [normal] must be a finite number, got {value!r}")
        return float(value)

    if "sd" not in spec:
        raise fail(f, "[normal] needs numbers `sd` and optionally `mean` and `floor`")
    sd = number(spec["sd"], "sd")
    mean0 = number(spec.get("mean", 0.0), "mean")
    floor = number(spec.get("floor", 0.0), "floor")
    if sd <= 0 or not 0 <= floor <= 1:
        raise fail(f, "sd must be > 0 and floor in [0, 1]")
    coef, offset = spec.get("coef", {}), spec.get("offset", {})
    if not isinstance(coef, dict) or not isinstance(offset, dict):
        raise fail(f, "coef and offset must be tables keyed by parent, e.g. coef = { scale = 1.4 }")
    for p, c in coef.items():
        number(c, f"coef.{p}")
    for p, row in offset.items():
        if not isinstance(row, dict):
            raise fail(f, f"offset.{p} must be a table keyed by {p}'s values, e.g. {{ square = -0.2 }}")
        for k, v in row.items():
            number(v, f"offset.{p}.{k}")
    for p in list(coef) + list(offset):
        if p not in parents:
            raise fail(f, f"{p!r} in coef/offset is not a parent of {f}; add it to parents or remove it")
    for p in coef:
        if p not in world.numeric:
            raise fail(f, f"coef needs a numeric parent, {p!r} is not; use offset.{p}")
    return sd, mean0, floor, coef, offset


def _normal_law(world: World, f: str, spec: dict[str, Any], parents: tuple[str, ...], fail):
    """The world's law that ``[normal]``'s ``law`` names (None when it names none)."""
    if "law" not in spec:
        return None
    laws = dict(world.laws)
    if not isinstance(spec["law"], str):
        what = (
            "a table"
            if isinstance(spec["law"], dict)
            else ("a list" if isinstance(spec["law"], list) else type(spec["law"]).__name__)
        )
        raise fail(
            f,
            f'law in [normal] must be the name of a law in quotes, e.g. law = "NAME", got {what}; '
            f"world {world.name!r} has laws: {', '.join(sorted(laws)) or 'none'}",
        )
    if spec["law"] not in laws:
        known = ", ".join(sorted(laws)) or "none"
        raise fail(f, f"unknown law {spec['law']!r} in [normal]; world {world.name!r} has laws: {known}")
    law = laws[spec["law"]]
    absent = [a for a in law.args if a not in parents]
    if absent:
        raise fail(f, f"law {spec['law']!r} reads {', '.join(law.args)}; add {absent[0]!r} to the parents of {f}")
    return law


def _normal_row(world: World, f: str, grid: np.ndarray, mean: float, sd: float, floor: float, fail) -> np.ndarray:
    """One row of a ``[normal]`` table: the normal(mean, sd) over ``f``'s ``grid``, mixed with ``floor`` of the
    uniform."""
    half = (grid[-1] - grid[0]) / (2 * (len(grid) - 1)) if len(grid) > 1 else 0.5
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        distance = np.abs(grid - mean)
        log_w = -0.5 * (distance / sd) ** 2
        far = not np.exp(log_w).sum() > 0
    if not np.isfinite(mean) or (far and not grid[0] - half <= mean <= grid[-1] + half):
        raise fail(
            f,
            f"the normal's mean {mean:g} is so far off the grid ({world.factor(f).domain}) that every "
            f"value has probability 0 at sd {sd:g}; move the mean onto the grid or widen sd",
        )
    if np.isfinite(log_w.max()):
        # in log space, shifted by the largest: a narrow sd whose weights all
        # underflow still puts its mass on the grid values nearest the mean
        w = np.exp(log_w - log_w.max())
    else:  # so narrow that even (distance / sd)**2 overflows: the nearest values
        w = (distance == distance.min()).astype(np.float64)
    return (1 - floor) * w / w.sum() + floor / len(grid)
