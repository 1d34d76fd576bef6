"""Wrappers that strip a mechanism down, to test the engine's generic fallback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

__all__ = ["BareMechanism", "bare"]


class BareMechanism:
    """Only the required members of a mechanism (plus ``size``): no log_prob, abduct, propose."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.parents = tuple(inner.parents)
        self.event_dim = inner.event_dim
        if hasattr(inner, "size"):
            self.size = inner.size

    def noise_prior(self, num_particles: int):
        return self._inner.noise_prior(num_particles)

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        return self._inner.assign(parents, noise)


def bare(factory: Callable[..., object]) -> Callable[..., BareMechanism]:
    """A factory whose mechanisms have only ``noise_prior`` and ``assign``.

    >>> from cvaeq.mechanisms import gumbel_max
    >>> import torch
    >>> m = bare(gumbel_max)(parents=(), probs=torch.tensor([0.5, 0.5]))
    >>> hasattr(m, "abduct")
    False
    """

    def make(*args: object, **params: object) -> BareMechanism:
        return BareMechanism(factory(*args, **params))

    make.__name__ = f"bare_{getattr(factory, '__name__', 'family')}"
    return make
