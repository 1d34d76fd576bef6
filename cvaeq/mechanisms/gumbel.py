"""Gumbel-max categorical mechanism with exact (top-down) abduction.

``v = argmax_k (l_k(parents) + G_k)``, ``G_k ~ Gumbel(0, 1)`` iid, where ``l`` are
the log-probabilities of a table ``[*parent sizes, size]``. Given an observed
class ``k``, the noise posterior is sampled exactly, top-down (Oberst & Sontag
2019, "Counterfactual off-policy evaluation with Gumbel-max structural causal
models"): draw the maximum ``M ~ Gumbel(logsumexp l)``, set ``l_k + G_k = M``,
draw ``g_j ~ Gumbel(l_j)`` truncated to ``<= M`` for ``j != k`` by
``g_j <- -log(exp(-M) + exp(-g_j))``, and return ``G = g - l``.

>>> import torch
>>> m = GumbelMax(parents=(), probs=torch.tensor([0.5, 0.3, 0.2]))
>>> g, log_weight = m.abduct(torch.tensor([2, 2]), {})
>>> m.assign({}, g).tolist(), [round(w, 4) for w in log_weight.tolist()]
([2, 2], [-1.6094, -1.6094])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyro.distributions as dist
import torch
from torch import Tensor

from .base import Abduction
from .categorical import as_table, rows

__all__ = ["GumbelMax", "gumbel_max"]


class GumbelMax:
    """Gumbel-max categorical: ``argmax(log probs[parents] + Gumbel noise)``.

    :param parents: parent names, in the order of the table's leading axes.
    :param probs: ``[*parent sizes, size]`` probabilities (rows sum to 1).
    """

    event_dim = 0
    intervenable = True

    def __init__(self, parents: Sequence[str], probs) -> None:
        self.parents = tuple(parents)
        self.probs = as_table(self.parents, probs)
        # float32 arithmetic: twice the speed of float64 over [S, size] noise; replay
        # stays exact because abduct checks the very argmax that assign computes.
        self.logits = self.probs.log().float()
        self._log_probs = self.probs.log()  # float64, for weights
        self.size = int(self.probs.shape[-1])
        self._finite = bool(torch.isfinite(self.logits).all())
        self._lse = torch.logsumexp(self.logits, dim=-1, keepdim=True)  # ~0: rows sum to 1

    def __repr__(self) -> str:
        return f"GumbelMax(parents={self.parents}, size={self.size})"

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        zero = torch.zeros((), dtype=self.logits.dtype)
        return dist.Gumbel(zero, zero + 1).expand((num_particles, self.size)).to_event(1)

    def _logits(self, parents: Mapping[str, Tensor], num: int) -> Tensor:
        return rows(self.logits, self.parents, parents, num)

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        return torch.argmax(self._logits(parents, noise.shape[0]) + noise, dim=-1)

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        lp = rows(self._log_probs, self.parents, parents, value.shape[0])
        return lp.gather(-1, value.long().unsqueeze(-1)).squeeze(-1)

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
        """A sample of ``G | argmax(l + G) = value`` (exact, top-down), and ``log p(value | parents)``."""
        return Abduction(self.abduct_noise(value, parents), self.log_prob(value, parents))

    def abduct_noise(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """The noise of :meth:`abduct` alone."""
        k = value.long().unsqueeze(-1)
        logits = self._logits(parents, value.shape[0])
        # Gumbel(0, 1) draws as -log(-log U): column 0 for the maximum.
        g = _gumbel((logits.shape[0], logits.shape[1] + 1), logits.dtype)
        top = rows(self._lse, self.parents, parents, value.shape[0]) + g[:, :1]
        finite = logits if self._finite else torch.where(torch.isfinite(logits), logits, torch.zeros_like(logits))
        # g_j <- -log(exp(-top) + exp(-g_j)) = top - softplus(top - g_j): truncated to <= top
        noise = (top - torch.nn.functional.softplus(top - (finite + g[:, 1:]))).scatter_(-1, k, top) - finite
        if not self._finite:  # classes of probability 0 never win; their noise keeps its prior
            noise = torch.where(torch.isfinite(logits), noise, g[:, 1:])
        return _ensure_wins(logits, noise, k)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.parents == other.parents and torch.equal(self.probs, other.probs)

    __hash__ = object.__hash__


def _gumbel(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Standard Gumbel draws ``-log(-log U)`` (faster than ``exponential_``).

    In float32 the uniforms' resolution cuts the Gumbel's tails beyond a
    probability of about 1e-7, far below any Monte-Carlo error.
    """
    u = torch.rand(shape, dtype=dtype)
    return u.clamp_(min=torch.finfo(dtype).tiny).log_().neg_().log_().neg_()


def _ensure_wins(logits: Tensor, noise: Tensor, k: Tensor) -> Tensor:
    """Guard against float rounding: make ``argmax(logits + noise)`` be ``k`` (a no-op almost surely).

    The check is the very computation :meth:`GumbelMax.assign` does, so passing
    it means replay reproduces ``k`` exactly.
    """
    for _ in range(8):
        score = logits + noise
        bad = torch.argmax(score, -1, keepdim=True) != k
        if not bool(bad.any()):
            return noise
        rival = score.scatter(-1, k, float("-inf")).max(-1, keepdim=True).values
        lk = logits.gather(-1, k)
        bumped = torch.nextafter(rival - lk, torch.full_like(rival, float("inf")))
        bumped = torch.nextafter(torch.maximum(bumped, noise.gather(-1, k)), torch.full_like(rival, float("inf")))
        noise = noise.scatter(-1, k, torch.where(bad, bumped, noise.gather(-1, k)))
    return noise


def gumbel_max(parents: Sequence[str], probs) -> GumbelMax:
    """Factory of the ``gumbel_max`` family (registered by the built-in plugin)."""
    return GumbelMax(parents=parents, probs=probs)
