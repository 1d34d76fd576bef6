"""The mechanism protocol: what one node's structural assignment must provide.

A mechanism for node ``v`` is ``v = assign(parents, N_v)`` with exogenous noise
``N_v ~ noise_prior``. Everything is batched over particles: the first
dimension of every tensor is the particle dimension ``S``.

Value conventions: categorical factors are ``int64`` class tensors ``[S]``,
continuous factors ``float64`` values ``[S]``; the
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
  marginalised (the weight of evidence whose noise is not wanted);
* ``abduct(value, parents)``: exact abduction, an :class:`Abduction`: a sample
  of the noise from ``p(N_v | v = value, parents)`` together with its
  log-weight ``log p(v = value | parents)`` ``[S]`` (what ``log_prob`` gives),
  computed from the same work (an image decodes once for both); nothing is
  kept between calls, so calls may come in any order. A mechanism written
  before 2026-12-07, whose ``abduct`` returns the noise alone, still works:
  :func:`abduction` then takes the weight from its ``log_prob``;
* ``abduct_noise(value, parents)``: the noise of ``abduct`` alone, for
  callers that do not want the weight (rejuvenation); without it,
  :func:`abducted_noise` calls ``abduct`` and drops the weight;
* ``weigh(value, parents)``: ``abduct`` in two steps, ``(log_weight, draw)``,
  where ``draw(rows)`` gives the noise of the particles ``rows`` (all of them
  for None) from what ``weigh`` computed. The engine then weighs first and
  draws the noise once, after resampling, for the copies it keeps (the 8-bit
  image: one draw of its 12,288 pixel noises per particle instead of two);
* ``propose(value, unknown, known)``: amortised proposal for the unobserved
  parents named in ``unknown``, given this node's observed value ``[S, ...]``
  and the values already ``known`` (evidence, ``[S, ...]``); returns
  ``(values, log_q)`` (``{parent: [S, ...]}``, ``[S]`` log proposal density
  of the joint draw), or ``None`` to decline (the engine then samples those
  parents from their prior and weights by the likelihood).

Exact abduction needs both ``abduct`` and ``log_prob``. Values given by a
user (evidence, ``do()``) are checked against a mechanism's domain by one
function, :func:`checked_value`.

>>> from cvaeq.mechanisms import GumbelMax
>>> import torch
>>> m = GumbelMax(parents=(), probs=torch.tensor([0.2, 0.8]))
>>> isinstance(m, Mechanism), can_abduct(m)
(True, True)
>>> a = abduction(m, torch.tensor([1, 1]), {})
>>> m.assign({}, a.noise).tolist(), torch.equal(a.log_weight, m.log_prob(torch.tensor([1, 1]), {}))
([1, 1], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..errors import QueryError

__all__ = [
    "Mechanism",
    "Abduction",
    "abduction",
    "abducted_noise",
    "checked_value",
    "can_abduct",
    "can_log_prob",
    "can_propose",
    "can_weigh_first",
    "is_intervenable",
]


class Abduction(NamedTuple):
    """What exact abduction gives: the noise and its log-weight, computed together.

    :ivar noise: ``[S, ...]`` a sample of ``p(N_v | v = value, parents)``.
    :ivar log_weight: ``[S]`` ``log p(v = value | parents)``, equal to the
        mechanism's ``log_prob(value, parents)``.
    """

    noise: Tensor
    log_weight: Tensor


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

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction: ...

    def abduct_noise(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor: ...

    def weigh(
        self, value: Tensor, parents: Mapping[str, Tensor]
    ) -> tuple[Tensor, Callable[[Tensor | None], Tensor]]: ...

    def propose(
        self, value: Tensor, unknown: Sequence[str], known: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], Tensor]: ...


def abduction(m: object, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
    """``m.abduct(value, parents)`` as an :class:`Abduction`, whichever contract ``m`` follows.

    A mechanism's ``abduct`` returns ``(noise, log_weight)``; one written to
    the contract before 2026-12-07 returns the noise alone, and its weight is
    then its ``log_prob(value, parents)``, called right after (the order such
    mechanisms were always called in).
    """
    out = m.abduct(value, parents)  # type: ignore[attr-defined]
    if isinstance(out, Tensor):
        return Abduction(out, m.log_prob(value, parents))  # type: ignore[attr-defined]
    noise, log_weight = out
    return Abduction(noise, log_weight)


def abducted_noise(m: object, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
    """The noise of :func:`abduction` without its weight: ``m.abduct_noise`` where
    ``m`` has it (an image's likelihood is then not computed), else ``m.abduct``'s noise."""
    noise_only = getattr(m, "abduct_noise", None)
    if callable(noise_only):
        return noise_only(value, parents)
    out = m.abduct(value, parents)  # type: ignore[attr-defined]
    return out if isinstance(out, Tensor) else out[0]


def checked_value(m: object, node: str, value: object, what: str | Callable[[], str]) -> Tensor:
    """``value`` for ``node`` as a tensor, checked against its mechanism's domain.

    A categorical mechanism (one with ``size``) takes integer classes
    ``0 .. size - 1`` (floats that are whole numbers are taken as classes); a
    continuous one (``continuous = True``, :mod:`cvaeq.mechanisms.continuous`)
    takes float64 numbers in its ``[low, high]``;
    anything else is a :class:`~cvaeq.errors.QueryError` that starts with
    ``what`` (``"evidence shape=3"``, ``"do(shape=3)"``; or a function giving it, called
    only for the error: a tensor's repr takes a third of a millisecond, in every
    question). The one domain check of evidence and of ``do()``; shapes are checked by
    their callers.

    >>> from cvaeq.mechanisms import GumbelMax
    >>> checked_value(GumbelMax(parents=(), probs=torch.tensor([0.5, 0.5])), "coin", 2, "do(coin=2)")
    Traceback (most recent call last):
    ...
    cvaeq.errors.QueryError: do(coin=2) is off the domain; coin has classes 0..1
    """
    if getattr(m, "continuous", False):
        return _checked_number(m, node, value, what)
    t = torch.as_tensor(value)
    size = getattr(m, "size", None)
    if size is not None:
        if t.is_floating_point() and not bool((t == t.round()).all()):
            raise QueryError(f"{_said(what)} is not a class index of {node}")
        t = t.long()
        if bool(((t < 0) | (t >= size)).any()):
            raise QueryError(f"{_said(what)} is off the domain; {node} has classes 0..{size - 1}")
    return t


def _said(what: str | Callable[[], str]) -> str:
    """``what``, or what the function ``what`` gives (:func:`checked_value`)."""
    return what if isinstance(what, str) else what()


def _checked_number(m: object, node: str, value: object, what: str | Callable[[], str]) -> Tensor:
    """A continuous factor's value(s) as float64, each finite and in the
    mechanism's ``[low, high]`` (its world's interval)."""
    try:
        t = torch.as_tensor(value, dtype=torch.float64) if not isinstance(value, Tensor) else value.double()
    except (TypeError, ValueError, RuntimeError):
        raise QueryError(f"{_said(what)} is not a number; {node} takes a number") from None
    low, high = float(getattr(m, "low", -math.inf)), float(getattr(m, "high", math.inf))
    if not bool(torch.isfinite(t).all()) or bool(((t < low) | (t > high)).any()):
        raise QueryError(f"{_said(what)} is off the domain; {node} takes a number from {low:g} to {high:g}")
    return t


def can_abduct(m: object) -> bool:
    """Whether ``m`` abducts its noise exactly (has ``abduct`` and ``log_prob``; see :func:`abduction`)."""
    return callable(getattr(m, "abduct", None)) and callable(getattr(m, "log_prob", None))


def can_weigh_first(m: object) -> bool:
    """Whether ``m`` abducts in two steps: ``weigh(value, parents) -> (log_weight, draw)``,
    ``draw(rows)`` the noise of the particles ``rows`` afterwards (an 8-bit image:
    its pixel noise is drawn once, after resampling, for the particles kept)."""
    return can_abduct(m) and callable(getattr(m, "weigh", None))


def can_log_prob(m: object) -> bool:
    """Whether ``m`` gives ``log p(value | parents)``."""
    return callable(getattr(m, "log_prob", None))


def can_propose(m: object) -> bool:
    """Whether ``m`` proposes its unobserved parents from its observed value."""
    return callable(getattr(m, "propose", None))


def is_intervenable(m: object) -> bool:
    """Whether ``do()`` may replace ``m`` (False for the image)."""
    return bool(getattr(m, "intervenable", True))
