"""cvaeq plugin: the ``ordinal`` mechanism family (inverse-CDF categorical).

``v = smallest k with U <= CDF_k(parents)``, ``U ~ Uniform(0, 1)``: one uniform
noise per node, read through the cumulative distribution of the node's table
row. Abduction is exact: ``U | v = k ~ Uniform(CDF_{k-1}, CDF_k)``.

Unlike Gumbel-max, its counterfactuals are *monotone*: if a change of parents
moves the distribution up (first-order stochastic dominance), the
counterfactual class is never below the factual one, particle by particle.
That suits ordered factors (scale, positions) whose story reads "bigger
parents make bigger children".

>>> import torch
>>> m = Ordinal(parents=(), probs=torch.tensor([0.2, 0.5, 0.3]))
>>> m.assign({}, torch.tensor([0.1, 0.2, 0.5, 0.71, 0.99])).tolist()
[0, 0, 1, 1, 2]
>>> u, log_weight = m.abduct(torch.tensor([1, 1]), {})   # the noise and log p(value | parents)
>>> bool(((u > 0.2) & (u <= 0.7)).all()), [round(w, 4) for w in log_weight.tolist()]
(True, [-0.6931, -0.6931])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyro.distributions as dist
import torch
from torch import Tensor

from cvaeq import hookimpl
from cvaeq.mechanisms.base import Abduction
from cvaeq.mechanisms.categorical import as_table, rows

__all__ = ["Ordinal", "ordinal", "register_mechanisms"]


class Ordinal:
    """Inverse-CDF categorical mechanism over a table ``[*parent sizes, size]``."""

    event_dim = 0
    intervenable = True

    def __init__(self, parents: Sequence[str], probs) -> None:
        self.parents = tuple(parents)
        self.probs = as_table(self.parents, probs)
        self.size = int(self.probs.shape[-1])
        cdf = self.probs.cumsum(-1)
        cdf[..., -1] = 1.0  # exactly 1, whatever the rounding
        self.cdf = cdf
        self.logits = self.probs.log()

    def __repr__(self) -> str:
        return f"Ordinal(parents={self.parents}, size={self.size})"

    def noise_prior(self, num_particles: int):
        zero = torch.zeros((), dtype=torch.float64)
        return dist.Uniform(zero, zero + 1).expand((num_particles,))

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        cdf = rows(self.cdf, self.parents, parents, noise.shape[0])
        return (cdf < noise.unsqueeze(-1)).sum(-1).clamp(max=self.size - 1)

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        lp = rows(self.logits, self.parents, parents, value.shape[0])
        return lp.gather(-1, value.long().unsqueeze(-1)).squeeze(-1)

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
        """``U | v = k ~ Uniform(CDF_{k-1}, CDF_k)``, kept strictly above ``CDF_{k-1}``,
        with its log-weight ``log p(v = k | parents)``."""
        k = value.long().unsqueeze(-1)
        cdf = rows(self.cdf, self.parents, parents, value.shape[0])
        hi = cdf.gather(-1, k).squeeze(-1)
        lo = torch.where(k.squeeze(-1) > 0, cdf.gather(-1, (k - 1).clamp(min=0)).squeeze(-1), torch.zeros_like(hi))
        u = lo + (hi - lo) * torch.rand(hi.shape, dtype=hi.dtype)
        u = torch.minimum(torch.maximum(u, torch.nextafter(lo, torch.ones_like(lo))), hi)
        return Abduction(u, self.log_prob(value, parents))


def ordinal(parents: Sequence[str], probs) -> Ordinal:
    """Factory of the ``ordinal`` family: ``ordinal(parents=..., probs=table)``."""
    return Ordinal(parents, probs)


@hookimpl
def register_mechanisms(register):
    register("ordinal", ordinal)
