"""The engine over many evidence sets at once: ``B`` groups of ``K`` particles.

:func:`cvaeq.engine.infer` answers one query; evaluation asks the same query
of hundreds of images. Here the images are stacked into one particle batch of
``S = B * K`` (image ``b`` owns particles ``b*K .. b*K + K - 1``), abduction
runs once for all of them (without the engine's resampling, which would mix
the groups), and the weights are normalised within each group. As in
``infer``, a group whose effective sample size falls below half its particles
is then resampled within itself and rejuvenated (:func:`cvaeq.engine.rejuvenate`). The numbers are those of
``infer`` on each image alone, at a fraction of the cost.

Abduction's log-weights are importance weights
``log p(f) + log p(z) + log p(x | f, z) - log q(f | x) - log q(z | x, f)``,
so the same particles give the importance-sampled likelihood of each image.

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> g = abduct_groups(build_scm(load_story()), {"shape": torch.tensor([0, 2])}, 4)
>>> g.weights.shape, predict_groups(g, {"shape": torch.tensor([1, 1])})["shape"].tolist()
(torch.Size([2, 4]), [[1, 1, 1, 1], [1, 1, 1, 1]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor

from ..engine import Particles, abduct, intervene, predict, rejuvenate
from ..engine.particles import systematic_indices
from ..scm import SCM

__all__ = ["GroupParticles", "abduct_groups", "predict_groups", "group_mean", "DedupedImageModel"]


@dataclass(frozen=True)
class GroupParticles:
    """Abducted particles of ``B`` evidence sets, ``K`` particles each.

    :ivar scm: the factual SCM they were abducted on.
    :ivar particles: the engine's particles, ``S = B * K``, grouped consecutively
        (a resampled group's with equal weights).
    :ivar log_weights: ``[B, K]`` abduction's unnormalised log importance
        weights (float64), before any resampling: the likelihood estimates.
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
        lw = self.particles.log_weights.reshape(self.groups, self.per_group)
        dead = ~torch.isfinite(lw).any(1, keepdim=True)
        lw = torch.where(dead, torch.zeros_like(lw), lw)
        return torch.softmax(lw, dim=1)

    def log_marginal(self) -> Tensor:
        """``[B]`` importance-sampled ``log p(evidence)``: ``logmeanexp`` of the log-weights."""
        return torch.logsumexp(self.log_weights, dim=1) - math.log(self.per_group)


def abduct_groups(scm: SCM, evidence: Mapping[str, Tensor], per_group: int,
                  resample_below: float = 0.5) -> GroupParticles:
    """Abduct ``K = per_group`` particles for each of ``B`` evidence sets.

    ``evidence`` values carry a leading group dimension ``B`` (a class per
    group, or an image ``[B, H, W]``); uses torch's global RNG. A group whose
    ESS is below ``resample_below * K`` is resampled within itself (0: never),
    and the resampled particles rejuvenated, as ``infer`` does for one group.
    """
    values = {k: torch.as_tensor(v) for k, v in evidence.items()}
    groups = {int(v.shape[0]) for v in values.values()}
    if len(groups) != 1:
        raise ValueError(f"evidence values must share one leading group dimension, got {sorted(groups)}")
    (b,) = groups
    batched = {k: v.repeat_interleave(per_group, 0) for k, v in values.items()}
    particles = abduct(scm, batched, b * per_group, resample_below=0.0)
    log_w = particles.log_weights.reshape(b, per_group)
    g = GroupParticles(scm, particles, log_w, b, per_group)
    w = g.weights
    low = (1.0 / (w * w).sum(1)) < resample_below * per_group
    if bool(low.any()):
        idx = torch.arange(per_group).expand(b, per_group).clone()
        idx[low] = systematic_indices(w[low])
        flat = (idx + per_group * torch.arange(b).unsqueeze(1)).reshape(-1)
        lw = torch.where(low.unsqueeze(1), torch.zeros_like(log_w), log_w).reshape(-1)
        moved = Particles(noise={k: v[flat] for k, v in particles.noise.items()},
                          values={k: v[flat] for k, v in particles.values.items()},
                          log_weights=lw, ess=particles.ess, resampled=True)
        g = GroupParticles(scm, rejuvenate(scm, moved), log_w, b, per_group)
    return g


def predict_groups(g: GroupParticles, interventions: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """``{node: [B, K, ...]}`` predicted under per-group interventions ``{node: [B]}``."""
    do = {k: torch.as_tensor(v).repeat_interleave(g.per_group, 0) for k, v in (interventions or {}).items()}
    world = intervene(g.scm, do) if do else g.scm
    out = predict(world, g.particles)
    return {k: v.reshape(g.groups, g.per_group, *v.shape[1:]) for k, v in out.items()}


def group_mean(g: GroupParticles, values: Tensor) -> Tensor:
    """Weighted mean over each group's particles: ``[B, K, ...]`` → ``[B, ...]``."""
    w = g.weights.to(values.dtype if values.is_floating_point() else torch.float64)
    w = w.reshape(*w.shape, *([1] * (values.dim() - 2)))
    return (values.to(w.dtype) * w).sum(1)


class DedupedImageModel:
    """An image model whose ``factor_logits`` runs once per run of identical images.

    The proposal q(factors | X) is asked for every particle, and particles of
    one image repeat that image; this wrapper evaluates each consecutive run
    once and repeats the answer. Everything else is passed through.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.latent_dim = int(model.latent_dim)
        if callable(getattr(model, "pixel_logits", None)):  # the protocol's optional member passes through
            self.pixel_logits = model.pixel_logits

    def decode_probs(self, classes: Tensor, z: Tensor) -> Tensor:
        """The model's ``decode_probs``, else the sigmoid of its ``pixel_logits``."""
        if callable(getattr(self.model, "decode_probs", None)):
            return self.model.decode_probs(classes, z)
        return torch.sigmoid(self.model.pixel_logits(classes, z).double())

    def z_posterior(self, x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.z_posterior(x, classes)

    def factor_logits(self, x: Tensor) -> dict[str, Tensor]:
        if x.shape[0] < 2:
            return self.model.factor_logits(x)
        flat = x.reshape(x.shape[0], -1)
        new = torch.ones(x.shape[0], dtype=torch.bool)
        new[1:] = (flat[1:] != flat[:-1]).any(1)
        run = torch.cumsum(new.long(), 0) - 1
        logits = self.model.factor_logits(x[new])
        return {f: v[run] for f, v in logits.items()}
