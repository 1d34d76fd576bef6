"""The one place composing Pearl's three steps: abduction, action, prediction.

:func:`infer_scenarios` answers a question about one or more *scenarios*
(sets of interventions sharing one draw of the exogenous noise,
:mod:`cvaeq.rung`): it abducts the noise once from the factual evidence,
applies each distinct scenario's interventions and predicts each from the
same particles (:mod:`.scenarios`). :func:`infer` is it with one scenario:
``P(targets | do(interventions), evidence)``, with evidence and interventions
a counterfactual (the evidence is about the factual world), with
interventions only an interventional query, without them an observational
one (the prior, or a posterior). The answer is a :class:`Result` of weighted
samples.

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> scm = build_scm(load_story())
>>> r = infer(scm, ["scale"], {"shape": 0}, {"shape": torch.tensor(2), "scale": torch.tensor(0)}, 1000, seed=0)
>>> r.rung, round(r.ess)
('counterfactual', 1000)
>>> round(sum(r.distribution("scale").values()), 6)
1.0
>>> r = infer_scenarios(scm, {"scale": ("scale", {}), "scale @ square": ("scale", {"shape": 0})},
...                     {"shape": torch.tensor(2), "scale": torch.tensor(5)}, 1000, seed=0)
>>> round(r.distribution("scale")[5], 6), round(r.distribution("scale @ square")[5], 6)
(1.0, 1.0)
>>> round(r.probability({"scale": 5, "scale @ square": 5}), 6)   # a big heart, had it been a square, is still big
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import QueryError
from ..rung import Rung, rung, scenario_key
from ..scm import SCM
from .abduction import FALLBACK_SAMPLES, abduct
from .particles import checked_seed, normalised
from .scenarios import COMPARISONS, intervened_scms, predict_scenarios, weigh_scenario_evidence

__all__ = ["infer", "infer_scenarios", "Result", "infer_worlds", "WorldsResult", "QUANTILES", "HISTOGRAM_BINS"]

#: The quantile levels a continuous target's answer gives (:meth:`Result.quantiles`).
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: The bins of a continuous target's histogram (:meth:`Result.histogram`).
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class Result:
    """Weighted samples of the targets, with the effective sample size.

    :param targets: the target keys, as asked (:func:`infer`: node names;
        :func:`infer_scenarios`: the keys of (node, scenario) pairs).
    :param samples: ``{target: [S, ...]}`` predicted values (classes for
        categorical nodes, ``[S, d]`` for Z, ``[S, H, W]`` for X).
    :param factual: ``{target: [S, ...]}`` the same particles' factual values.
    :param weights: ``[S]`` self-normalised weights (float64), with the
        evidence about intervened scenarios.
    :param ess: effective sample size of the answer: the abduction's (before
        resampling), with the evidence about intervened scenarios
        (:func:`~cvaeq.engine.scenarios.weigh_scenario_evidence`).
    :param rung: ``"observational"``, ``"interventional"`` or ``"counterfactual"`` (:mod:`cvaeq.rung`).
    :param sizes: ``{target: number of classes}`` for categorical targets.
    :param grids: ``{target: float64 [size]}`` the numbers of a numeric
        factor's classes (from the SCM's world), for :meth:`expectation`.
    :param abduction_ess: the factual abduction's ESS alone (None: ``ess``).
    :param continuous: the keys of continuous targets (float64 values ``[S]``):
        :meth:`expectation`, :meth:`quantiles`, :meth:`histogram` and interval
        events in :meth:`probability` read them.
    """

    targets: tuple[str, ...]
    samples: dict[str, Tensor]
    factual: dict[str, Tensor]
    weights: Tensor
    ess: float
    rung: Rung
    sizes: dict[str, int]
    grids: dict[str, Tensor] = field(default_factory=dict)
    abduction_ess: float | None = None
    continuous: tuple[str, ...] = ()

    @property
    def kind(self) -> Rung:
        """The former name of :attr:`rung`."""
        return self.rung

    @property
    def num_particles(self) -> int:
        return int(self.weights.shape[0])

    def _target(self, target: str) -> Tensor:
        if target not in self.samples:
            raise QueryError(f"{target!r} is not a target of this result; targets: {', '.join(self.targets)}")
        return self.samples[target]

    def distribution(self, target: str) -> dict[int, float]:
        """``{class: probability}`` of a categorical target, every class listed."""
        s = self._target(target)
        if target in self.continuous:
            raise QueryError(f"{target!r} is continuous: it has no classes; ask its quantiles or histogram")
        if target not in self.sizes:
            raise QueryError(f"{target!r} is not categorical; ask for its mean (or expectation) instead")
        probs = torch.zeros(self.sizes[target], dtype=torch.float64).index_add_(0, s.long(), self.weights)
        return {k: float(p) for k, p in enumerate(probs)}

    def expectation(self, target: str) -> float:
        """E[target] of a numeric factor, in its world's values (dSprites: scale, orientation, posX, posY),
        or of a continuous one."""
        s = self._target(target)
        if target in self.continuous:
            return float((s.double() * self.weights).sum())
        if target not in self.grids:
            numeric = ", ".join(self.grids) or "none among the targets"
            raise QueryError(
                f"E[{target}] is not defined: only numeric factors ({numeric}) have "
                f"an expectation; ask for P({target} | ...) instead"
            )
        values = self.grids[target][s.long()]
        return float((values * self.weights).sum())

    def probability(self, events: Mapping[str, object]) -> float:
        """P(every event holds), over the shared particles: the joint of several scenarios.

        An event's value is a class (``key`` takes it) or ``(op, number)``
        with ``op`` one of ``<``, ``<=``, ``>``, ``>=`` (an interval event:
        a continuous target's value, or a numeric factor's grid number,
        compared with the number)."""
        hold = torch.ones(self.num_particles, dtype=torch.bool)
        for key, value in events.items():
            hold &= self.holds(key, value)
        return float(self.weights[hold].sum())

    def holds(self, key: str, value: object) -> Tensor:
        """``[S]`` bool: where ``key``'s event holds (see :meth:`probability`)."""
        s = self._target(key)
        if isinstance(value, tuple):
            op, number = value
            if op not in COMPARISONS:
                raise QueryError(f"unknown comparison {op!r}; use one of {', '.join(COMPARISONS)}")
            if key in self.continuous:
                numbers = s.double()
            elif key in self.grids:
                numbers = self.grids[key][s.long()]
            else:
                raise QueryError(f"{key} {op} {number} compares numbers; {key!r} has none (ask P({key}=...))")
            return COMPARISONS[op](numbers, float(number))
        if key in self.continuous:
            raise QueryError(f"{key} is continuous: P({key}={value}) is 0; ask an interval, e.g. P({key} > {value})")
        return s.long() == int(value)  # type: ignore[call-overload]

    def _weighted_sorted(self, target: str) -> tuple[Tensor, Tensor]:
        """A continuous target's values with positive weight, sorted, and their cumulative weights."""
        if target not in self.continuous:
            raise QueryError(f"{target!r} is not continuous: ask its distribution P({target} | ...)")
        s, w = self._target(target).double(), self.weights
        keep = w > 0
        s, w = s[keep], w[keep]
        order = torch.argsort(s, stable=True)
        return s[order], torch.cumsum(w[order], 0)

    def quantiles(self, target: str, levels: Sequence[float] = QUANTILES) -> dict[float, float]:
        """``{q: value}``: weighted quantiles of a continuous target, the inverse of
        its weighted empirical CDF: the smallest value whose cumulative weight reaches
        ``q`` (ties within a relative 1e-9 count as reached). ``q = 0`` is the least
        value of positive weight, ``q = 1`` the greatest."""
        s, cum = self._weighted_sorted(target)
        total = float(cum[-1])
        out = {}
        for q in levels:
            if not 0 <= q <= 1:
                raise QueryError(f"a quantile level is in [0, 1], got {q}")
            at = torch.searchsorted(cum, torch.tensor([q * total * (1 - 1e-9)], dtype=torch.float64))
            out[float(q)] = float(s[min(int(at), len(s) - 1)])
        return out

    def histogram(self, target: str, bins: int = HISTOGRAM_BINS) -> tuple[list[float], list[float]]:
        """``(edges, probabilities)`` of a continuous target: ``bins`` equal bins from its
        least to its greatest value of positive weight (``bins + 1`` edges; the last bin
        holds its right edge), each bin's weight (they sum to 1)."""
        s, cum = self._weighted_sorted(target)
        w = torch.diff(cum, prepend=torch.zeros(1, dtype=torch.float64))
        low, high = float(s[0]), float(s[-1])
        if high == low:
            return [low, high], [1.0]
        edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
        at = torch.bucketize(s, edges[1:-1], right=True)
        probs = torch.zeros(bins, dtype=torch.float64).index_add_(0, at, w) / cum[-1]
        return edges.tolist(), probs.tolist()

    def expected_difference(self, left: str, right: str) -> float:
        """E[left - right] of two numeric targets, particle by particle."""
        return self.expectation(left) - self.expectation(right)

    def mean(self, target: str) -> Tensor:
        """Weighted mean of a tensor target (the mean image for X, the mean of Z)."""
        s = self._target(target)
        w = self.weights.reshape(-1, *([1] * (s.dim() - 1)))
        return (s.double() * w).sum(0)

    def mean_image(self, target: str = "X") -> Tensor:
        """The weighted mean image ``[H, W]`` or ``[C, H, W]`` on the [0, 1] scale
        (binary: the pixel probabilities of the answer; 8-bit: the mean level / 255)."""
        s = self._target(target)
        if s.dtype == torch.uint8:  # 8-bit levels: a weighted sum over particles in float32 (off by < 1e-5), / 255
            rows, w = s.reshape(s.shape[0], -1), self.weights.to(torch.float32)
            flat = torch.zeros(rows.shape[1], dtype=torch.float32)
            for i in range(0, rows.shape[0], _MEAN_ROWS):  # rows converted a few at a time (in cache)
                flat.addmv_(rows[i : i + _MEAN_ROWS].T.to(torch.float32), w[i : i + _MEAN_ROWS])
            return flat.reshape(s.shape[1:]).div_(255)
        return self.mean(target).float()

    def sample_images(self, n: int, target: str = "X") -> Tensor:
        """The ``n`` highest-weight sampled images ``[n, H, W]`` (after resampling: the first ``n``)."""
        s = self._target(target)
        order = torch.argsort(self.weights, descending=True, stable=True)
        return s.index_select(0, order[:n])  # whole rows copied (indexing gathered them element by element)


#: Particles whose 8-bit pictures :meth:`Result.mean_image` converts to float at a time.
_MEAN_ROWS = 16

#: The former name of :class:`Result` (a result about several scenarios is a :class:`Result`).
WorldsResult = Result


def target_facts(scm: SCM, nodes: Mapping[str, str]) -> tuple[dict[str, int], dict[str, Tensor]]:
    """A result's ``sizes`` and ``grids`` for targets keyed ``{key: node}``:
    the class count of each categorical node, and the numbers of a numeric
    factor's classes from the SCM's world (for expectations)."""
    world = getattr(scm, "world", None)
    sizes = {
        key: int(scm.mechanisms[node].size)  # type: ignore[attr-defined]  # a categorical node's (checked below)
        for key, node in nodes.items()
        if getattr(scm.mechanisms[node], "size", None) is not None
    }
    grids = {
        key: torch.as_tensor(world.values[node], dtype=torch.float64)
        for key, node in nodes.items()
        if world is not None and node in world.numeric and node not in world.continuous
    }
    return sizes, grids


def continuous_targets(scm: SCM, nodes: Mapping[str, str]) -> tuple[str, ...]:
    """The keys of targets whose node's mechanism is continuous (float64 values)."""
    return tuple(key for key, node in nodes.items() if getattr(scm.mechanisms[node], "continuous", False))


def infer_scenarios(
    scm: SCM,
    targets: Mapping[str, tuple[str, Mapping[str, object]]],
    evidence: Mapping[str, object] | None = None,
    num_particles: int = 1000,
    seed: int = 0,
    *,
    scenario_evidence: Sequence[tuple[str, Mapping[str, object], object]] = (),
    resample_below: float = 0.5,
    fallback_samples: int = FALLBACK_SAMPLES,
) -> Result:
    """Targets in one or more scenarios that share the noise abducted from ``evidence``.

    :param scm: the factual SCM (see :func:`cvaeq.scm.build_scm`).
    :param targets: ``{key: (node, interventions)}``; empty interventions: the
        factual scenario (the abducted particles' own values). Interventions
        are ``{node: value}``: classes for factors, tensors for Z.
    :param evidence: ``{node: value}`` about the factual scenario.
    :param num_particles: particles ``S``.
    :param seed: seeds torch's RNG (forked: the global state is left alone);
        the same seed gives the same result, bit for bit.
    :param scenario_evidence: ``(node, interventions, class)`` observations in
        intervened scenarios, or ``(node, interventions, (op, number))``
        interval evidence in any scenario (``{}``: the factual one): particles
        disagreeing get weight 0.

    Runs under ``torch.no_grad()``: an image model's networks are only evaluated.
    """
    seed = checked_seed(seed)
    evidence = dict(evidence or {})
    wanted = {key: (node, dict(do)) for key, (node, do) in targets.items()}
    observed = [(node, dict(do), value) for node, do, value in scenario_evidence]
    for node in [n for n, _ in wanted.values()] + [n for n, _, _ in observed]:
        if node not in scm.graph:
            raise QueryError(f"unknown target {node!r}; known: {', '.join(scm.nodes)}")
    scenarios = [do for _, do in wanted.values()] + [do for _, do, _ in observed]
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # no gradients: networks only evaluate
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds CUDA, XPU, MTIA (~1 ms)
        scms = intervened_scms(scm, scenarios)  # action first: a bad do() fails before any work
        particles = abduct(
            scm, evidence, num_particles, resample_below=resample_below, fallback_samples=fallback_samples
        )
        predicted = predict_scenarios(scms, particles)
    log_w, ess = weigh_scenario_evidence(
        particles, predicted, observed, target_facts(scm, {n: n for n, _, _ in observed})[1]
    )
    sizes, grids = target_facts(scm, {key: node for key, (node, _) in wanted.items()})
    return Result(
        targets=tuple(wanted),
        samples={key: predicted[scenario_key(do)][node] for key, (node, do) in wanted.items()},
        factual={key: particles.values[node] for key, (node, _) in wanted.items()},
        weights=normalised(log_w),
        ess=ess,
        rung=rung(scenarios, evidence=bool(evidence)),
        sizes=sizes,
        grids=grids,
        abduction_ess=particles.ess,
        continuous=continuous_targets(scm, {key: node for key, (node, _) in wanted.items()}),
    )


def infer(
    scm: SCM,
    targets: Sequence[str],
    interventions: Mapping[str, object] | None = None,
    evidence: Mapping[str, object] | None = None,
    num_particles: int = 1000,
    seed: int = 0,
    *,
    resample_below: float = 0.5,
    fallback_samples: int = FALLBACK_SAMPLES,
) -> Result:
    """``P(targets | do(interventions), evidence)``: :func:`infer_scenarios` with
    every target in the one scenario ``do(interventions)``.

    :param scm: the factual SCM (see :func:`cvaeq.scm.build_scm`).
    :param targets: nodes to report (the result's keys).
    :param interventions: ``{node: value}``: classes for factors, tensors for Z.
    :param evidence: ``{node: value}`` about the factual world.
    :param num_particles, seed, resample_below, fallback_samples: as for :func:`infer_scenarios`.
    """
    do = dict(interventions or {})
    return infer_scenarios(
        scm,
        {t: (t, do) for t in targets},
        evidence,
        num_particles,
        seed,
        resample_below=resample_below,
        fallback_samples=fallback_samples,
    )


def infer_worlds(
    scm: SCM, targets, evidence=None, num_particles: int = 1000, seed: int = 0, *, world_evidence=(), **options
) -> Result:
    """The former name of :func:`infer_scenarios` (``world_evidence`` is its ``scenario_evidence``)."""
    return infer_scenarios(scm, targets, evidence, num_particles, seed, scenario_evidence=world_evidence, **options)
