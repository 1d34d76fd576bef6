"""Weighted particles: samples of every node's exogenous noise, with log-weights.

The output of abduction and the input of prediction. Every tensor's first
dimension is the particle dimension ``S``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import QueryError

__all__ = [
    "Particles",
    "effective_sample_size",
    "normalised",
    "group_weights",
    "systematic_indices",
    "resample_groups",
    "checked_seed",
]


def checked_seed(seed: object) -> int:
    """``seed`` as an int if it is an integer from 0 to 2**63 - 1 (torch's seeds
    are signed 64-bit); a QueryError saying so otherwise (torch would take -1
    silently and refuse 1.5 or 2**64 with a RuntimeError or OverflowError).

    >>> checked_seed(3)
    3
    >>> checked_seed(-1)
    Traceback (most recent call last):
    ...
    cvaeq.errors.QueryError: seed must be an integer from 0 to 9,223,372,036,854,775,807, got -1
    """
    from ..limits import MAX_SEED, check_count

    return check_count(seed, "seed", MAX_SEED, low=0, error=QueryError)


def normalised(log_weights: Tensor) -> Tensor:
    """Self-normalised weights ``[S]`` (float64) of unnormalised log-weights.

    All ``-inf`` (no particle is consistent with the evidence) is a QueryError.
    """
    lw = log_weights.double()
    if not bool(torch.isfinite(lw).any()):
        raise QueryError(
            "the evidence is impossible under the model: no particle reproduces it; "
            "check the evidence values, or use more particles"
        )
    return torch.softmax(torch.nan_to_num(lw, nan=float("-inf")), dim=0)


def effective_sample_size(log_weights: Tensor) -> float:
    """Kish's ESS ``1 / sum(w^2)`` of self-normalised weights: ``S`` when all are equal."""
    w = normalised(log_weights)
    return float(1.0 / (w * w).sum())


def group_weights(log_weights: Tensor) -> Tensor:
    """Weights ``[B, K]`` normalised within each row of log-weights ``[B, K]``
    (float64); a row whose particles are all impossible gets uniform weights,
    so that its answer is still defined."""
    lw = log_weights.double()
    dead = ~torch.isfinite(lw).any(1, keepdim=True)
    lw = torch.where(dead, torch.zeros_like(lw), lw)
    return torch.softmax(lw, dim=1)


def systematic_indices(weights: Tensor) -> Tensor:
    """Systematic resampling of each row of normalised ``weights [B, K]``: ``[B, K]`` indices.

    One uniform per row, ``K`` evenly spaced points through the row's CDF:
    particle ``i`` is copied ``floor(K w_i)`` or ``ceil(K w_i)`` times, never
    the multinomial's anywhere-from-0-to-K (less noise added for the same
    unbiased answer). Uses torch's RNG.
    """
    w = weights.double()
    b, k = w.shape
    cdf = torch.cumsum(w, dim=1)
    cdf = cdf / cdf[:, -1:]  # exact 1 at the end, whatever the rounding
    points = (torch.rand(b, 1, dtype=torch.float64) + torch.arange(k, dtype=torch.float64)) / k
    return torch.searchsorted(cdf, points, right=True).clamp_(max=k - 1)


@dataclass(frozen=True)
class Particles:
    """The posterior over all exogenous noise as weighted particles.

    :param noise: ``{node: noise [S, ...]}`` for every node of the SCM.
    :param values: ``{node: factual value [S, ...]}`` (what the noise produces).
    :param log_weights: ``[S]`` unnormalised log-weights (float64).
    :param ess: effective sample size of the abduction's weights, measured
        before any resampling (resampling makes the weights equal but does not
        add information).
    :param resampled: whether abduction resampled because the ESS was low.
    """

    noise: dict[str, Tensor]
    values: dict[str, Tensor]
    log_weights: Tensor
    ess: float
    resampled: bool = field(default=False)

    @property
    def num_particles(self) -> int:
        return int(self.log_weights.shape[0])

    @property
    def weights(self) -> Tensor:
        """Self-normalised weights ``[S]``."""
        return normalised(self.log_weights)

    def resample(self) -> Particles:
        """Systematic resampling (torch's RNG): equal weights, same ESS record.

        The copies of a particle share its noise; the engine then redraws what
        it can exactly (:func:`cvaeq.engine.abduction.rejuvenate`).
        """
        return resample_groups(self, self.weights.unsqueeze(0))

    def take(self, rows: Tensor) -> Particles:
        """The particles ``rows`` (copies where an index repeats), with log-weight 0:
        :meth:`resample` at indices already drawn (:func:`systematic_indices`)."""
        return Particles(
            noise={n: v[rows] for n, v in self.noise.items()},
            values={n: v[rows] for n, v in self.values.items()},
            log_weights=torch.zeros_like(self.log_weights),
            ess=self.ess,
            resampled=True,
        )


def resample_groups(particles: Particles, weights: Tensor, which: Tensor | None = None) -> Particles:
    """Systematic resampling within each of ``B`` consecutive groups of ``K`` particles.

    :param weights: ``[B, K]`` normalised weights of each group (``B = 1``:
        all particles, :meth:`Particles.resample`).
    :param which: ``[B]`` bool, the groups to resample (default: all); the
        others keep their particles and log-weights.
    :returns: particles whose resampled groups hold copies with log-weight 0;
        the ESS record is kept. Uses torch's RNG (one uniform per resampled group).
    """
    b, k = weights.shape
    if which is None:
        which = torch.ones(b, dtype=torch.bool)
    idx = torch.arange(k).expand(b, k).clone()
    idx[which] = systematic_indices(weights[which])
    flat = (idx + k * torch.arange(b).unsqueeze(1)).reshape(-1)
    lw = particles.log_weights.reshape(b, k)
    lw = torch.where(which.unsqueeze(1), torch.zeros_like(lw), lw).reshape(-1)
    return Particles(
        noise={n: v[flat] for n, v in particles.noise.items()},
        values={n: v[flat] for n, v in particles.values.items()},
        log_weights=lw,
        ess=particles.ess,
        resampled=True,
    )
