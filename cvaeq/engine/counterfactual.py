"""The one place composing Pearl's three steps: abduction, action, prediction.

:func:`infer` answers ``P(targets | do(interventions), evidence)``: with
evidence and interventions a counterfactual (the evidence is about the factual
world), with interventions only an interventional query, with evidence only an
observational one. The answer is a :class:`Result` of weighted samples.

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> scm = build_scm(load_story())
>>> r = infer(scm, ["scale"], {"shape": 0}, {"shape": torch.tensor(2), "scale": torch.tensor(0)}, 1000, seed=0)
>>> r.kind, round(r.ess)
('counterfactual', 1000)
>>> round(sum(r.distribution("scale").values()), 6)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import QueryError
from ..scm import SCM
from .abduction import FALLBACK_SAMPLES, abduct
from .action import intervene
from .particles import checked_seed
from .prediction import predict

__all__ = ["infer", "Result", "query_kind"]


def query_kind(interventions: Mapping[str, object], evidence: Mapping[str, object]) -> str:
    """``"counterfactual"`` (do and evidence), ``"interventional"`` (do only) or ``"observational"``."""
    if interventions and evidence:
        return "counterfactual"
    return "interventional" if interventions else "observational"


@dataclass(frozen=True)
class Result:
    """Weighted samples of the targets, with the abduction's effective sample size.

    :param targets: the target nodes, as asked.
    :param samples: ``{target: [S, ...]}`` predicted values (classes for
        categorical nodes, ``[S, d]`` for Z, ``[S, H, W]`` for X).
    :param factual: ``{target: [S, ...]}`` the same particles' factual values.
    :param weights: ``[S]`` self-normalised weights (float64).
    :param ess: effective sample size of the abduction (before resampling).
    :param kind: ``"observational"``, ``"interventional"`` or ``"counterfactual"``.
    :param sizes: ``{target: number of classes}`` for categorical targets.
    :param grids: ``{target: float64 [size]}`` the numbers of a numeric
        factor's classes (from the SCM's world), for :meth:`expectation`.
    """

    targets: tuple[str, ...]
    samples: dict[str, Tensor]
    factual: dict[str, Tensor]
    weights: Tensor
    ess: float
    kind: str
    sizes: dict[str, int]
    grids: dict[str, Tensor] = field(default_factory=dict)

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
        if target not in self.sizes:
            raise QueryError(f"{target!r} is not categorical; ask for its mean (or expectation) instead")
        probs = torch.zeros(self.sizes[target], dtype=torch.float64).index_add_(0, s.long(), self.weights)
        return {k: float(p) for k, p in enumerate(probs)}

    def expectation(self, target: str) -> float:
        """E[target] of a numeric factor, in its world's values (dSprites: scale, orientation, posX, posY)."""
        s = self._target(target)
        if target not in self.grids:
            numeric = ", ".join(self.grids) or "none among the targets"
            raise QueryError(
                f"E[{target}] is not defined: only numeric factors ({numeric}) have "
                f"an expectation; ask for P({target} | ...) instead"
            )
        values = self.grids[target][s.long()]
        return float((values * self.weights).sum())

    def mean(self, target: str) -> Tensor:
        """Weighted mean of a tensor target (the mean image for X, the mean of Z)."""
        s = self._target(target)
        w = self.weights.reshape(-1, *([1] * (s.dim() - 1)))
        return (s.double() * w).sum(0)

    def mean_image(self, target: str = "X") -> Tensor:
        """The weighted mean image ``[H, W]`` or ``[C, H, W]`` on the [0, 1] scale
        (binary: the pixel probabilities of the answer; 8-bit: the mean level / 255)."""
        mean = self.mean(target)
        if self._target(target).dtype == torch.uint8:  # 8-bit levels
            mean = mean / 255
        return mean.float()

    def sample_images(self, n: int, target: str = "X") -> Tensor:
        """The ``n`` highest-weight sampled images ``[n, H, W]`` (after resampling: the first ``n``)."""
        s = self._target(target)
        order = torch.argsort(self.weights, descending=True, stable=True)
        return s[order[:n]]


def target_facts(scm: SCM, nodes: Mapping[str, str]) -> tuple[dict[str, int], dict[str, Tensor]]:
    """A result's ``sizes`` and ``grids`` for targets keyed ``{key: node}``:
    the class count of each categorical node, and the numbers of a numeric
    factor's classes from the SCM's world (for expectations)."""
    world = getattr(scm, "world", None)
    sizes = {key: int(scm.mechanisms[node].size) for key, node in nodes.items()
             if getattr(scm.mechanisms[node], "size", None) is not None}
    grids = {key: torch.as_tensor(world.values[node], dtype=torch.float64)
             for key, node in nodes.items() if world is not None and node in world.numeric}
    return sizes, grids


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
    """``P(targets | do(interventions), evidence)`` by abduction, action, prediction.

    :param scm: the factual SCM (see :func:`cvaeq.scm.build_scm`).
    :param targets: nodes to report.
    :param interventions: ``{node: value}``: classes for factors, tensors for Z.
    :param evidence: ``{node: value}`` about the factual world.
    :param num_particles: particles ``S``.
    :param seed: seeds torch's RNG (forked: the global state is left alone);
        the same seed gives the same result, bit for bit.

    Runs under ``torch.no_grad()``: an image model's networks are only evaluated.
    """
    seed = checked_seed(seed)
    interventions = dict(interventions or {})
    evidence = dict(evidence or {})
    targets = tuple(targets)
    for t in targets:
        if t not in scm.graph:
            raise QueryError(f"unknown target {t!r}; known: {', '.join(scm.nodes)}")
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # no gradients: networks only evaluate
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds CUDA, XPU, MTIA (~1 ms)
        world = intervene(scm, interventions)  # action first: a bad do() fails before any work
        particles = abduct(
            scm, evidence, num_particles, resample_below=resample_below, fallback_samples=fallback_samples
        )
        values = predict(world, particles)
    sizes, grids = target_facts(scm, {t: t for t in targets})
    return Result(
        targets=targets,
        samples={t: values[t] for t in targets},
        factual={t: particles.values[t] for t in targets},
        weights=particles.weights,
        ess=particles.ess,
        kind=query_kind(interventions, evidence),
        sizes=sizes,
        grids=grids,
    )
