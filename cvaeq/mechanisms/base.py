"""The mechanism protocol: what one node's structural assignment must provide.

A mechanism for node ``v`` is ``v = assign(parents, N_v)`` with exogenous noise
``N_v ~ noise_prior``. Everything is batched over particles: the first
dimension of every tensor is the particle dimension ``S``.

Value conventions: categorical factors are ``int64`` class tensors ``[S]``; the
latent Z is float ``[S, d]``; the image X is float 0/1 ``[S, H, W]``.

Required members (a mechanism with only these still answers every query, through
the engine's generic fallback, more slowly):

* ``parents``: the parent names the mechanism reads, a tuple;
* ``event_dim``: dimensions of one value (0 for a class, 1 for Z, 2 for X);
* ``noise_prior(num_particles)``: a batched torch distribution whose samples
  have shape ``[S, ...]`` (use ``.to_event`` so ``log_prob`` gives ``[S]``);
* ``assign(parents, noise)``: the value, deterministic.

Optional members, used when present:

* ``size``: number of classes of a categorical node (interventions are checked
  against it; the conformance suite enumerates it);
* ``intervenable``: ``False`` forbids ``do()`` on the node (the image);
* ``log_prob(value, parents)``: ``log p(v = value | parents)`` ``[S]``, noise
  marginalised;
* ``abduct(value, parents)``: a sample of the noise from
  ``p(N_v | v = value, parents)`` (exact abduction);
* ``propose(value, unknown, known)``: amortised proposal for the unobserved
  parents named in ``unknown``, given this node's observed value ``[S, ...]``
  and the values already ``known`` (evidence, ``[S, ...]``); returns
  ``(values, log_q)`` (``{parent: [S, ...]}``, ``[S]`` log proposal density
  of the joint draw), or ``None`` to decline (the engine then samples those
  parents from their prior and weights by the likelihood).

>>> from cvaeq.mechanisms import GumbelMax
>>> import torch
>>> m = GumbelMax(parents=(), probs=torch.tensor([0.2, 0.8]))
>>> isinstance(m, Mechanism), can_abduct(m)
(True, True)
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

__all__ = ["Mechanism", "can_abduct", "can_log_prob", "can_propose", "is_intervenable"]


@runtime_checkable
class Mechanism(Protocol):
    """The required part of a mechanism (see the module docstring for the rest)."""

    parents: tuple[str, ...]
    event_dim: int

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        """Distribution of ``N_v``, batched: samples are ``[num_particles, ...]``."""
        ...

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        """The node's value ``[S, ...]`` from parent values and noise; deterministic."""
        ...


class _Optional(Protocol):  # documentation of the optional members' signatures
    size: int
    intervenable: bool

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor: ...

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor: ...

    def propose(
        self, value: Tensor, unknown: Sequence[str], known: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], Tensor]: ...


def can_abduct(m: object) -> bool:
    """Whether ``m`` abducts its noise exactly (has ``abduct`` and ``log_prob``)."""
    return callable(getattr(m, "abduct", None)) and callable(getattr(m, "log_prob", None))


def can_log_prob(m: object) -> bool:
    """Whether ``m`` gives ``log p(value | parents)``."""
    return callable(getattr(m, "log_prob", None))


def can_propose(m: object) -> bool:
    """Whether ``m`` proposes its unobserved parents from its observed value."""
    return callable(getattr(m, "propose", None))


def is_intervenable(m: object) -> bool:
    """Whether ``do()`` may replace ``m`` (False for the image)."""
    return bool(getattr(m, "intervenable", True))
