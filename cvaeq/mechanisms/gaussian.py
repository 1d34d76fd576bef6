"""The Gaussian latent Z: a root node ``Z = N``, ``N ~ Normal(0, I)``.

Its noise *is* its value, so abduction is exact and trivial; its posterior given
an image comes from the image mechanism's proposal q(Z | X, factors).

>>> import torch
>>> m = GaussianLatent(dim=3)
>>> z = torch.zeros(2, 3)
>>> torch.equal(m.assign({}, m.abduct(z, {}).noise), z)
True
"""

from __future__ import annotations

from collections.abc import Mapping

import pyro.distributions as dist
import torch
from torch import Tensor

from ..errors import MechanismError
from .base import Abduction

__all__ = ["GaussianLatent", "gaussian_latent"]


class GaussianLatent:
    """A standard normal root of ``dim`` dimensions; values are float ``[S, dim]``."""

    event_dim = 1
    intervenable = True
    parents: tuple[str, ...] = ()

    def __init__(self, dim: int) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise MechanismError(f"a Gaussian latent needs a positive integer dimension, got {dim!r}")
        self.dim = dim

    def __repr__(self) -> str:
        return f"GaussianLatent(dim={self.dim})"

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        return dist.Normal(torch.zeros(()), torch.ones(())).expand((num_particles, self.dim)).to_event(1)

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        return noise

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        return self.noise_prior(value.shape[0]).log_prob(value.float())

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
        """The noise is the value; its weight the prior density."""
        return Abduction(value.float(), self.log_prob(value, parents))

    def abduct_noise(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """The noise of :meth:`abduct` alone: the value."""
        return value.float()


def gaussian_latent(dim: int) -> GaussianLatent:
    """Factory of the ``gaussian_latent`` family (registered by the built-in plugin)."""
    return GaussianLatent(dim)
