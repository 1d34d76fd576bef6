"""Many evidence sets at once: ``B`` groups of ``K`` particles in one pass.

:func:`~cvaeq.engine.infer` answers one query; evaluation (and anyone
scoring a model) asks the same query of hundreds of images. Here the evidence
sets are stacked into one particle batch of ``S = B * K`` (set ``b`` owns
particles ``b*K .. b*K + K - 1``) and the engine's own steps run once for all
of them: :func:`~cvaeq.engine.abduct` (without its resampling, which would
mix the groups), then, as ``abduct`` does for one group, a group whose
effective sample size falls below ``resample_below * K`` is resampled within
itself (:func:`~cvaeq.engine.particles.resample_groups`, the code behind
:meth:`Particles.resample`) and rejuvenated (:func:`~cvaeq.engine.rejuvenate`);
prediction is :func:`~cvaeq.engine.predict` under per-group interventions.
Each group's numbers are those of ``infer`` on its evidence alone with the
same random numbers (one group: bit for bit), at a fraction of the cost.

Abduction's log-weights are importance weights (with an image observed:
``log p(f) + log p(z) + log p(x | f, z) - log q(f | x) - log q(z | x, f)``),
so the same particles give the importance-sampled likelihood of each set
(:meth:`GroupParticles.log_marginal`).

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> g = abduct_groups(build_scm(load_story()), {"shape": torch.tensor([0, 2])}, 4)
>>> g.weights.shape, predict_groups(g, {"shape": torch.tensor([1, 1])})["shape"].tolist()
(torch.Size([2, 4]), [[1, 1, 1, 1], [1, 1, 1, 1]])
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import QueryError
from ..scm import SCM
from .abduction import FALLBACK_SAMPLES, abduct, rejuvenate
from .action import intervene
from .particles import Particles, group_weights, resample_groups
from .prediction import predict_changes

__all__ = ["GroupParticles", "abduct_groups", "predict_groups", "group_mean"]


@dataclass(frozen=True)
class GroupParticles:
    """Abducted particles of ``B`` evidence sets, ``K`` particles each.

    :ivar scm: the factual SCM they were abducted on.
    :ivar particles: the engine's particles, ``S = B * K``, grouped consecutively
        (a resampled group's with equal weights).
    :ivar log_weights: ``[B, K]`` abduction's unnormalised log importance
        weights (float64), before any resampling: the likelihood estimates.
    :ivar groups: ``B``.
    :ivar per_group: ``K``.
    """

    scm: SCM
    particles: Particles
    log_weights: Tensor
    groups: int
    per_group: int

    @property
    def weights(self) -> Tensor:
        """``[B, K]`` weights normalised within each group (uniform for a group
        whose particles are all impossible, so that its answer is still defined)."""
        return group_weights(self.particles.log_weights.reshape(self.groups, self.per_group))

    def select(self, lo: int, hi: int) -> GroupParticles:
        """Groups ``lo .. hi - 1`` alone (their particles, weights and likelihoods):
        one abduction of several evidence sets' groups, predicted under a
        different intervention per block of groups."""
        if not 0 <= lo < hi <= self.groups:
            raise QueryError(f"groups {lo}..{hi - 1} are not among the {self.groups} groups")
        rows = slice(lo * self.per_group, hi * self.per_group)
        p = self.particles
        part = Particles(
            noise={n: v[rows] for n, v in p.noise.items()},
            values={n: v[rows] for n, v in p.values.items()},
            log_weights=p.log_weights[rows],
            ess=p.ess,
            resampled=p.resampled,
        )
        return GroupParticles(self.scm, part, self.log_weights[lo:hi], hi - lo, self.per_group)

    def log_marginal(self) -> Tensor:
        """``[B]`` importance-sampled ``log p(evidence)``: ``logmeanexp`` of the log-weights."""
        return torch.logsumexp(self.log_weights, dim=1) - math.log(self.per_group)


def abduct_groups(
    scm: SCM,
    evidence: Mapping[str, Tensor],
    per_group: int,
    resample_below: float = 0.5,
    *,
    fallback_samples: int = FALLBACK_SAMPLES,
    weigh_only: Collection[str] = (),
) -> GroupParticles:
    """Abduct ``K = per_group`` particles for each of ``B`` evidence sets.

    :param evidence: ``{node: [B, ...]}``, one value per set (a class, or an
        image ``[B, H, W]``); every value has the same leading ``B``.
    :param resample_below: a group whose ESS is below this fraction of ``K``
        is resampled within itself and rejuvenated (0: never), as
        :func:`~cvaeq.engine.abduct` does for one.
    :param weigh_only: observed nodes that only weigh the particles (no noise
        drawn; see :func:`~cvaeq.engine.abduct`).
    Uses torch's global RNG (seed it, or fork it, for reproducible answers);
    runs under ``torch.no_grad()``.
    """
    values = {k: torch.as_tensor(v) for k, v in evidence.items()}
    sizes = {int(v.shape[0]) for v in values.values() if v.dim() > 0}
    if len(sizes) != 1 or any(v.dim() == 0 for v in values.values()):
        raise QueryError(f"evidence values must share one leading group dimension, got {sorted(sizes)}")
    (b,) = sizes
    with torch.no_grad():
        batched = {k: v.repeat_interleave(per_group, 0) for k, v in values.items()}
        particles = abduct(
            scm, batched, b * per_group, resample_below=0.0, fallback_samples=fallback_samples, weigh_only=weigh_only
        )
        log_w = particles.log_weights.reshape(b, per_group)
        w = group_weights(log_w)
        low = (1.0 / (w * w).sum(1)) < resample_below * per_group
        if bool(low.any()):
            particles = rejuvenate(scm, resample_groups(particles, w, low))
    return GroupParticles(scm, particles, log_w, b, per_group)


def predict_groups(g: GroupParticles, interventions: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """``{node: [B, K, ...]}`` predicted under per-group interventions ``{node: [B, ...]}``
    (none: the factual world, every node keeping its abducted value).

    Only the intervened nodes and their descendants are recomputed
    (:func:`~cvaeq.engine.prediction.predict_changes`): the others keep the
    particles' values, so a null intervention gives the evidence back exactly
    even where a continuous law's float64 inverse cannot replay a value to the
    last bit (a few in 100,000 of DeepSCM's intensities)."""
    do = {k: torch.as_tensor(v).repeat_interleave(g.per_group, 0) for k, v in (interventions or {}).items()}
    world = intervene(g.scm, do) if do else g.scm
    with torch.no_grad():
        out = predict_changes(world, g.particles)
    return {k: v.reshape(g.groups, g.per_group, *v.shape[1:]) for k, v in out.items()}


def group_mean(g: GroupParticles, values: Tensor) -> Tensor:
    """Weighted mean over each group's particles: ``[B, K, ...]`` → ``[B, ...]``."""
    w = g.weights.to(values.dtype if values.is_floating_point() else torch.float64)
    w = w.reshape(*w.shape, *([1] * (values.dim() - 2)))
    return (values.to(w.dtype) * w).sum(1)
