"""Continuous factors: an invertible mechanism ``value = f(parents, noise)`` with exact abduction.

The mechanism of a continuous factor is a :class:`~cvaeq.invertible.Law`,
``value = offset + gain * link(bias + weighted parents + scale * noise)``,
strictly increasing in its noise. So, as DeepSCM does with its flows, the
noise of an observed value is the inverse of the mechanism (``abduct`` is
exact and deterministic, no sampling), the weight of the evidence is the
density ``log p(value | parents)`` (the noise's base density at the inverse
plus the log-Jacobian), and a counterfactual replays the noise through the
mechanism under the new parents. Values are float64 ``[S]``.

Parents enter as the law says: a categorical parent's class picks its weight,
a numeric-grid parent's class its grid number times the weight, a continuous
parent's value times the weight.

>>> import torch
>>> from cvaeq.invertible import Law
>>> law = Law.from_dict({"link": "sigmoid", "offset": 64, "gain": 191, "bias": -5,
...                      "weights": {"thickness": 2}, "scale": 0.5}, ("thickness",))
>>> m = ContinuousMechanism(("thickness",), law, {"thickness": None}, low=0, high=255)
>>> t = {"thickness": torch.tensor([2.5, 3.0], dtype=torch.float64)}
>>> value = m.assign(t, torch.tensor([0.0, 1.0], dtype=torch.float64))
>>> value.dtype, [round(v, 4) for v in value.tolist()]
(torch.float64, [159.5, 220.1567])
>>> noise, log_p = m.abduct(value, t)
>>> torch.equal(m.assign(t, noise), value), bool(torch.equal(log_p, m.log_prob(value, t)))
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from torch import Tensor

from ..errors import MechanismError
from ..invertible import Law, Noise
from .base import Abduction

__all__ = ["ContinuousMechanism", "continuous", "noise_distribution"]


def noise_distribution(noise: Noise, num_particles: int) -> torch.distributions.Distribution:
    """The base noise as a batched float64 torch distribution ``[S]``."""
    zero = torch.zeros((), dtype=torch.float64)
    if noise.kind == "normal":
        d: torch.distributions.Distribution = dist.Normal(zero, zero + 1)
    elif noise.kind == "logistic":
        d = dist.TransformedDistribution(
            dist.Uniform(zero, zero + 1), [torch.distributions.transforms.SigmoidTransform().inv]
        )
    elif noise.kind == "uniform":
        d = dist.Uniform(zero, zero + 1)
    else:
        d = dist.Gamma(zero + noise.shape, zero + noise.rate)
    return d.expand((num_particles,))


class ContinuousMechanism:
    """A continuous factor's mechanism: its :class:`~cvaeq.invertible.Law` on float64 tensors.

    :param parents: parent names (the law's, in its order).
    :param law: the law (``value = offset + gain * link(...)``).
    :param kinds: ``{parent: kind}`` (:func:`cvaeq.invertible.kind_of`): labels,
        grid numbers, or None for a continuous parent.
    :param low, high: the factor's interval (its world's ``Factor.low/high``):
        evidence and ``do()`` values are checked against it
        (:func:`~cvaeq.mechanisms.base.checked_value`).

    A value the law cannot give (off its support, e.g. an intensity below
    64 under DeepSCM's law) has density 0: ``log_prob`` is ``-inf`` and
    ``abduct`` gives it weight 0 (and a finite noise, the base's median).
    """

    event_dim = 0
    intervenable = True
    continuous = True

    def __init__(
        self,
        parents: Sequence[str],
        law: Law,
        kinds: Mapping[str, Any] | None = None,
        *,
        low: float = -math.inf,
        high: float = math.inf,
    ) -> None:
        self.parents = tuple(parents)
        if tuple(law.parents) != self.parents:
            raise MechanismError(f"the law's parents {law.parents} are not the mechanism's {self.parents}")
        self.law = law
        self.kinds = dict(kinds or {p: None for p in self.parents})
        missing = [p for p in self.parents if p not in self.kinds]
        if missing:
            raise MechanismError(f"no kind given for parent {missing[0]!r} (labels, grid or None)")
        self.low, self.high = float(low), float(high)

    def __repr__(self) -> str:
        return f"ContinuousMechanism(parents={self.parents}, link={self.law.link!r}, noise={self.law.noise.kind!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.law == other.law and self.low == other.low and self.high == other.high

    __hash__ = object.__hash__

    def _terms(self, parents: Mapping[str, Tensor], num: int) -> dict[str, np.ndarray]:
        raw = {}
        for p in self.parents:
            v = parents[p].detach().cpu().reshape(-1)
            raw[p] = np.broadcast_to(v.numpy(), (num,)) if v.numel() == 1 else v.numpy()
        return self.law.terms(raw, self.kinds)

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        return noise_distribution(self.law.noise, num_particles)

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        """The value ``[S]`` float64 of the parents and the noise."""
        n = noise.detach().cpu().double().numpy()
        return torch.from_numpy(self.law.assign(self._terms(parents, len(n)), n))

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """``log p(value | parents)`` ``[S]`` float64 (a density; ``-inf`` off the law's support)."""
        v = value.detach().cpu().double().reshape(-1).numpy()
        return torch.from_numpy(self.law.log_prob(v, self._terms(parents, len(v))))

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
        """The noise (exactly: the inverse of :meth:`assign`) and ``log p(value | parents)``."""
        v = value.detach().cpu().double().reshape(-1).numpy()
        noise, log_p = self.law.abduct(v, self._terms(parents, len(v)))
        return Abduction(torch.from_numpy(noise), torch.from_numpy(log_p))

    def abduct_noise(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """The noise of :meth:`abduct` alone."""
        return self.abduct(value, parents).noise


def continuous(
    parents: Sequence[str],
    law: Law | Mapping[str, Any] | None = None,
    kinds: Mapping[str, Any] | None = None,
    probs: Any = None,
    **bounds: float,
) -> ContinuousMechanism:
    """Factory of the ``continuous`` mechanism family (registered by the built-in plugin):
    a :class:`ContinuousMechanism` of a law (or its table, :meth:`Law.from_dict`).
    A factor with classes (a table, ``probs``) is refused: it needs a categorical family."""
    if law is None:
        raise MechanismError(
            "the continuous mechanism is for continuous factors (a law, [factors.NAME.continuous]); "
            "a factor with classes takes a categorical family such as gumbel_max"
        )
    if not isinstance(law, Law):
        law = Law.from_dict(law, tuple(parents))
    return ContinuousMechanism(parents, law, kinds, **bounds)
