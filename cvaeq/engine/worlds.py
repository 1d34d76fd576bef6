"""Several worlds over one abduction: the multi-world (twin network) counterfactual.

A query such as PNS = P(Y_x = y, Y_x' = y') talks about several worlds at
once. All of them share one draw of the exogenous noise: :func:`infer_worlds`
abducts the noise once from the factual evidence, applies each world's
interventions to the model and predicts every world from the **same
particles** (one abduction, several actions, several predictions). The joint
of the worlds is then the joint over particles: a particle's value in one
world and in another come from the same noise.

Evidence about an intervened world (``Y_x' = y'`` given) is applied after
prediction by weighting: a particle whose prediction in that world disagrees
gets weight 0. This conditions the noise posterior on the event exactly, at
the price of the particles it rules out (the effective sample size says how
many were left).

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> scm = build_scm(load_story())
>>> r = infer_worlds(scm, {"scale": ("scale", {}), "scale @ square": ("scale", {"shape": 0})},
...                  {"shape": torch.tensor(2), "scale": torch.tensor(5)}, 1000, seed=0)
>>> round(r.distribution("scale")[5], 6), round(r.distribution("scale @ square")[5], 6)
(1.0, 1.0)
>>> round(r.probability({"scale": 5, "scale @ square": 5}), 6)   # a big heart, had it been a square, is still big
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import QueryError
from ..scm import SCM
from .abduction import FALLBACK_SAMPLES, abduct
from .action import intervene
from .counterfactual import Result, target_facts
from .particles import Particles, checked_seed, effective_sample_size
from .prediction import predict_changes

__all__ = ["infer_worlds", "WorldsResult"]


@dataclass(frozen=True)
class WorldsResult(Result):
    """A :class:`~cvaeq.engine.Result` whose targets are keys of (node, world) pairs.

    ``samples[key]`` holds each particle's value of the node in that world;
    ``weights`` already include the evidence about intervened worlds.
    ``ess`` is the effective sample size of the answer: the factual
    evidence's weights and those of the evidence about intervened worlds
    together (a question asked in one world, ``P(v | do(...), X=img)``, and
    with ``@``, ``P(v @ do(...) | X=img)``, report the same);
    ``abduction_ess`` is that of the factual abduction alone.
    """

    abduction_ess: float = 0.0

    def probability(self, events: Mapping[str, int]) -> float:
        """P(every ``key`` takes its class), over the shared particles: the joint of several worlds."""
        hold = torch.ones(self.num_particles, dtype=torch.bool)
        for key, value in events.items():
            hold &= self._target(key).long() == int(value)
        return float(self.weights[hold].sum())

    def expected_difference(self, left: str, right: str) -> float:
        """E[left - right] of two numeric targets, particle by particle."""
        return self.expectation(left) - self.expectation(right)


def _combined_ess(particles: Particles, log_w: Tensor) -> float:
    """The effective sample size of the answer: the factual evidence's and the
    intervened worlds' evidence's weights together, so that a question gets
    the ESS :func:`~cvaeq.engine.infer` reports for it when it is asked in one
    world.

    Without resampling the final log-weights hold both: Kish's ESS of them is
    exact. After resampling (the abduction's ESS fell below its threshold)
    the particles' weights are equal but they are copies of about
    ``particles.ess`` distinct draws; the world evidence then keeps a fraction
    ``ESS(world weights) / S`` of them, so the answer rests on
    ``particles.ess * ESS(world weights) / S`` (never more than either).
    """
    if not particles.resampled:
        return effective_sample_size(log_w)
    return particles.ess * effective_sample_size(log_w) / particles.num_particles


def _world_key(interventions: Mapping[str, object]) -> tuple:
    return tuple(sorted((k, tuple(torch.as_tensor(v).reshape(-1).tolist())) for k, v in interventions.items()))


def infer_worlds(
    scm: SCM,
    targets: Mapping[str, tuple[str, Mapping[str, object]]],
    evidence: Mapping[str, object] | None = None,
    num_particles: int = 1000,
    seed: int = 0,
    *,
    world_evidence: Sequence[tuple[str, Mapping[str, object], object]] = (),
    resample_below: float = 0.5,
    fallback_samples: int = FALLBACK_SAMPLES,
) -> WorldsResult:
    """Targets in several worlds that share the noise abducted from ``evidence``.

    :param scm: the factual SCM.
    :param targets: ``{key: (node, interventions)}``; empty interventions: the
        factual world (the abducted particles' own values).
    :param evidence: ``{node: value}`` about the factual world.
    :param world_evidence: ``(node, interventions, class)`` observations in
        intervened worlds: particles disagreeing get weight 0.
    :param seed: seeds torch's RNG (forked); the abduction draws exactly what
        :func:`~cvaeq.engine.infer` draws for the same evidence and seed, so a
        one-world query gives its answer bit for bit.
    """
    seed = checked_seed(seed)
    evidence = dict(evidence or {})
    wanted = [(node, dict(do)) for node, do in targets.values()] + [(n, dict(do)) for n, do, _ in world_evidence]
    for node, _ in wanted:
        if node not in scm.graph:
            raise QueryError(f"unknown target {node!r}; known: {', '.join(scm.nodes)}")
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.default_generator.manual_seed(seed)  # CPU only, as in engine.infer
        worlds: dict[tuple, SCM | None] = {}
        for _, do in wanted:  # actions first: a bad do() fails before any work
            key = _world_key(do)
            if key not in worlds:
                worlds[key] = intervene(scm, do) if do else None
        particles = abduct(
            scm, evidence, num_particles, resample_below=resample_below, fallback_samples=fallback_samples
        )
        predicted: dict[tuple, dict[str, Tensor]] = {}
        for key, world in worlds.items():  # one prediction per distinct world
            predicted[key] = particles.values if world is None else predict_changes(world, particles)
    log_w = particles.log_weights
    for node, do, value in world_evidence:
        same = predicted[_world_key(do)][node].long() == int(value)
        log_w = log_w + torch.where(same, 0.0, float("-inf")).double()
    if world_evidence and not bool(torch.isfinite(log_w).any()):
        raise QueryError(
            f"no particle of {num_particles} satisfies the evidence about the intervened world(s); "
            "it is impossible or rare: use more particles (--samples)"
        )
    samples = {key: predicted[_world_key(do)][node] for key, (node, do) in targets.items()}
    ess = _combined_ess(particles, log_w)
    sizes, grids = target_facts(scm, {key: node for key, (node, _) in targets.items()})
    intervened = any(do for _, do in wanted)
    kind = "counterfactual" if intervened and (evidence or world_evidence or len(worlds) > 1) else (
        "interventional" if intervened or not evidence else "observational")
    return WorldsResult(
        targets=tuple(targets),
        samples=samples,
        factual={key: particles.values[node] for key, (node, _) in targets.items()},
        weights=torch.softmax(torch.nan_to_num(log_w.double(), nan=float("-inf")), dim=0),
        ess=ess,
        kind=kind,
        sizes=sizes,
        grids=grids,
        abduction_ess=particles.ess,
    )
