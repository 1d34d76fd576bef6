"""The ``seed_mlp`` image-model family: how cvaeq builds and rebuilds a :class:`SeedMLP`.

``arch`` keys (``cvaeq train --family seed_mlp --arch KEY=VALUE,...``; every one optional):

* ``hidden``: width of every hidden layer, integer >= 1 (default 1000, the seed's);
* ``z_dim``: dimension of Z, integer >= 1 (default: the story's ``latent_dim``;
  the seed used 50 — a larger Z is the seed's choice, not one the SCM needs);
* ``aux_weight``: weight of the classifier's log-likelihood, a number >= 0 (default 10).

The world gives the rest: its factor names and sizes (the one-hot widths) and
its image shape. ``world.model_arch`` holds hints for other families (the
causal VAE's windows) and is ignored.

>>> from cvaeq.world import get_world
>>> fam = SeedMLPFamily()
>>> m = fam.build(get_world("dsprites"), 6, {"hidden": 16})
>>> fam.arch_of(m)
{'hidden': 16, 'z_dim': 6, 'aux_weight': 10.0}
>>> fam.build(get_world("dsprites"), 6, {"width": 16})
Traceback (most recent call last):
...
cvaeq.errors.CvaeqError: seed_mlp arch: unknown key 'width'; known: hidden, z_dim, aux_weight
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cvaeq.errors import CvaeqError

from .model import DEFAULT_AUX_WEIGHT, DEFAULT_HIDDEN, SeedMLP

__all__ = ["SeedMLPFamily", "ARCH_KEYS"]

#: The keys ``arch`` may hold.
ARCH_KEYS = ("hidden", "z_dim", "aux_weight")


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CvaeqError(f"seed_mlp arch: {key} must be an integer >= 1, got {value!r}")
    return value


def _weight(key: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise CvaeqError(f"seed_mlp arch: {key} must be a number >= 0, got {value!r}")
    return number


class SeedMLPFamily:
    """The ``seed_mlp`` family (:class:`cvaeq.model.family.ImageModelFamily`)."""

    #: the seed's MLP decodes Bernoulli pixels: binary pictures only
    pixel_kinds = ("binary",)

    def build(self, world: Any, latent_dim: int, arch: Mapping[str, Any]) -> SeedMLP:
        """An untrained :class:`SeedMLP` for ``world``; Z has ``arch["z_dim"]``
        dimensions if given, else ``latent_dim`` (the story's)."""
        if not isinstance(arch, Mapping):
            raise CvaeqError(f"seed_mlp arch must be a mapping of {', '.join(ARCH_KEYS)}, got {arch!r}")
        unknown = [k for k in arch if k not in ARCH_KEYS]
        if unknown:
            raise CvaeqError(f"seed_mlp arch: unknown key {unknown[0]!r}; known: {', '.join(ARCH_KEYS)}")
        hidden = _positive_int("hidden", arch.get("hidden", DEFAULT_HIDDEN))
        z_dim = _positive_int("z_dim", arch.get("z_dim", latent_dim))
        aux_weight = _weight("aux_weight", arch.get("aux_weight", DEFAULT_AUX_WEIGHT))
        return SeedMLP(
            world.names,
            [world.sizes[f] for f in world.names],
            world.image_shape,
            z_dim=z_dim,
            hidden=hidden,
            aux_weight=aux_weight,
        )

    def arch_of(self, model: SeedMLP) -> dict[str, Any]:
        """``{"hidden", "z_dim", "aux_weight"}``: with the same world, rebuilds the same shapes."""
        return {"hidden": model.hidden, "z_dim": model.latent_dim, "aux_weight": model.aux_weight}
