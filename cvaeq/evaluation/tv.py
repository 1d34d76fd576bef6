"""Total variation between the model's and the story's factor distributions.

The model answers with its *fitted* factor mechanisms
(``build_scm(story, factor_logits)``), the truth with the story's own tables
(``scm_from_story(story)``).

* Interventional distributions depend only on the conditional tables, so they
  are computed exactly, by enumerating every factor combination of the
  world's grid in the truncated factorisation (dSprites: 737,280; no Monte
  Carlo error).
* Counterfactual distributions depend on the mechanisms' noise, so they are
  answered by the engine (abduction, action, prediction) for both SCMs with
  the same particles and seed: the two share their random numbers and differ
  only where the tables do (identical tables give a TV of exactly 0).

The fixed query set is built from the story's graph (:func:`tv_queries`):

* interventional: the marginal ``P(t)`` of every factor, and
  ``P(t | do(a = v))`` for every factor ``t``, every factor ancestor ``a`` of
  ``t`` and probe values ``v`` of ``a`` (every class of a categorical factor,
  such as dSprites' shape; the first, middle and last grid value of a
  numeric factor);
* counterfactual: ``P(t | do(a = v'), world)`` for the same (ancestor, target)
  pairs, in a few factual worlds drawn from the story (all factors
  observed), with ``v'`` the class half-way round ``a``'s grid from its
  factual class.

>>> from cvaeq.story import load_story
>>> qs = tv_queries(load_story())
>>> len([q for q in qs if q.kind == "interventional"]), len([q for q in qs if q.kind == "counterfactual"])
(20, 20)
>>> qs[5].text
'P(scale | do(shape=square))'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from ..engine import abduct_groups, predict_groups
from ..scm import build_scm, scm_from_story
from ..world import World, get_world
from .metrics import total_variation

__all__ = ["TVQuery", "tv_queries", "tv_scores", "probe_values", "TV_WORLDS", "TV_PARTICLES", "interventional_exact"]

#: Factual worlds of the counterfactual queries.
TV_WORLDS = 4
#: Particles per query (the same for model and truth).
TV_PARTICLES = 20_000


@dataclass(frozen=True)
class TVQuery:
    """One factor-level query: ``P(target | do(do), evidence)``."""

    kind: str
    target: str
    do: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)
    #: the world whose labels :attr:`text` writes values with.
    world: World | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The query in cvaeq's query language."""
        label = get_world(self.world).label
        conds = []
        if self.do:
            conds.append("do(" + ", ".join(f"{k}={label(k, v)}" for k, v in self.do.items()) + ")")
        conds += [f"{k}={label(k, v)}" for k, v in self.evidence.items()]
        return f"P({self.target}" + (" | " + ", ".join(conds) if conds else "") + ")"


def probe_values(world: World, factor: str) -> list[int]:
    """Intervention classes probed for ``factor``: every class of a categorical
    factor, the first, middle and last grid value of a numeric one."""
    size = world.sizes[factor]
    return [0, size // 2, size - 1] if world.factor(factor).numeric else list(range(size))


def _pairs(story) -> list[tuple[str, str]]:
    """(ancestor, target) pairs of factors, targets in topological order."""
    factors = set(story.world.names)
    return [(a, t) for t in story.factors for a in story.factors if a in factors and a in story.graph.ancestors(t)]


def tv_queries(story, worlds: int = TV_WORLDS, seed: int = 0) -> list[TVQuery]:
    """The fixed query set of a story (see the module docstring)."""
    world, sizes = story.world, story.world.sizes
    out = [TVQuery("interventional", t, world=world) for t in story.factors]
    for a, t in _pairs(story):
        out += [TVQuery("interventional", t, {a: v}, world=world) for v in probe_values(world, a)]
    facts = story.sample(worlds, np.random.default_rng([seed, 0x7F]))
    for w in facts:
        fact = {f: int(w[i]) for i, f in enumerate(world.names)}
        for a, t in _pairs(story):
            v = (fact[a] + sizes[a] // 2) % sizes[a]
            out.append(TVQuery("counterfactual", t, {a: v}, fact, world=world))
    return out


def _tables(story, factor_logits) -> dict[str, np.ndarray]:
    """``{factor: probabilities [*parent sizes, size]}``: softmax of the logits, else the story's."""
    out = {}
    for f in story.factors:
        if factor_logits is not None and f in factor_logits:
            logits = torch.as_tensor(np.asarray(factor_logits[f]), dtype=torch.float64)
            out[f] = torch.softmax(logits, -1).numpy()
        else:
            out[f] = np.asarray(story.table(f), dtype=np.float64)
    return out


def _factor_term(story, f: str, table: np.ndarray) -> np.ndarray:
    """``table`` broadcast to one axis per factor (the world's order)."""
    names, sizes = story.world.names, story.world.sizes
    axes = [names.index(p) for p in story.parents(f)] + [names.index(f)]
    order = np.argsort(axes)
    shape = [1] * len(names)
    for a in axes:
        shape[a] = sizes[names[a]]
    return table.transpose(order).reshape(shape)


def interventional_exact(story, tables: dict[str, np.ndarray], target: str, do: dict) -> dict[int, float]:
    """``P(target | do(...))`` by enumeration of the truncated factorisation."""
    names, sizes = story.world.names, story.world.sizes
    joint = np.ones([sizes[f] for f in names])
    for f in story.factors:
        if f in do:
            delta = np.zeros(sizes[f])
            delta[do[f]] = 1.0
            shape = [1] * len(names)
            shape[names.index(f)] = sizes[f]
            joint = joint * delta.reshape(shape)
        else:
            joint = joint * _factor_term(story, f, tables[f])
    i = names.index(target)
    marginal = joint.sum(axis=tuple(a for a in range(len(names)) if a != i))
    marginal = marginal / marginal.sum()
    return {k: float(p) for k, p in enumerate(marginal)}


def _counterfactual(scm, queries: list[TVQuery], num_particles: int, seed: int) -> list[dict[int, float]]:
    """Answers of counterfactual queries, batched by intervened factor (one abduction each)."""
    answers: list[dict[int, float] | None] = [None] * len(queries)
    keys = sorted({tuple(sorted(q.do)) for q in queries})
    for key in keys:
        idx = [i for i, q in enumerate(queries) if tuple(sorted(q.do)) == key]
        evidence = {f: torch.tensor([queries[i].evidence[f] for i in idx]) for f in queries[idx[0]].evidence}
        do = {f: torch.tensor([queries[i].do[f] for i in idx]) for f in key}
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only, as in engine.infer
            g = abduct_groups(scm, evidence, num_particles)
            out = predict_groups(g, do)
        w = g.weights
        for row, i in enumerate(idx):
            t = queries[i].target
            probs = torch.zeros(int(scm.mechanisms[t].size), dtype=torch.float64).index_add_(
                0, out[t][row].long(), w[row]
            )
            answers[i] = {k: float(p) for k, p in enumerate(probs)}
    return cast(list[dict[int, float]], answers)  # every query is in one group, so every answer is set


def tv_scores(
    story, factor_logits, *, num_particles: int = TV_PARTICLES, seed: int = 0, queries: list[TVQuery] | None = None
) -> dict:
    """``{"interventional": mean TV, "counterfactual": mean TV, "queries": [...]}``.

    :param story: the story (ground truth, and the graph of the model's SCM).
    :param factor_logits: the model's ``{factor: logits [*parent sizes, size]}``.
    :param num_particles: particles per counterfactual query (both SCMs).
    Each entry of ``"queries"`` is ``{"query": text, "kind", "tv"}``.
    """
    queries = tv_queries(story, seed=seed) if queries is None else queries
    model_tables, true_tables = _tables(story, factor_logits), _tables(story, None)
    inter = [q for q in queries if q.kind == "interventional"]
    cf = [q for q in queries if q.kind == "counterfactual"]
    rows: list[dict[str, Any]] = []
    for q in inter:
        p = interventional_exact(story, model_tables, q.target, q.do)
        t = interventional_exact(story, true_tables, q.target, q.do)
        rows.append({"query": q.text, "kind": q.kind, "tv": total_variation(p, t)})
    if cf:
        model = _counterfactual(build_scm(story, factor_logits), cf, num_particles, seed)
        truth = _counterfactual(scm_from_story(story), cf, num_particles, seed)
        for q, p, t in zip(cf, model, truth):
            rows.append({"query": q.text, "kind": q.kind, "tv": total_variation(p, t)})
    out: dict = {}
    for kind in ("interventional", "counterfactual"):
        vals = [r["tv"] for r in rows if r["kind"] == kind]
        out[kind] = float(np.mean(vals)) if vals else None
    out["queries"] = rows
    return out
