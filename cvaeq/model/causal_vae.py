"""The built-in image-model family ``causal_vae``: builds, describes and
validates :class:`~cvaeq.model.cvae.CausalVAE` models for any world.

``arch`` (what ``cvaeq train --arch`` sets and checkpoints record) holds the
:class:`~cvaeq.model.networks.ArchConfig` fields plus the causal VAE's two
training options, ``aux_weight`` and ``orientation_loss``. Missing keys take
:class:`ArchConfig`'s defaults, completed by the world's hints
(``world.model_arch``: ``window``, ``centroid_correction``); a world without
two ``window_factors`` gets the full-image networks (``window=0``).

>>> from cvaeq.world import get_world
>>> model = CausalVAEFamily().build(get_world("dsprites"), 6, {"hidden": 16, "orientation_loss": "symmetric"})
>>> arch = CausalVAEFamily().arch_of(model)
>>> arch["hidden"], arch["window"], arch["orientation_loss"], arch["latent_dim"]
(16, 1, 'symmetric', 6)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import torch

from ..errors import CvaeqError
from .cvae import DEFAULT_AUX_WEIGHT, ORIENTATION_LOSSES, CausalVAE
from .family import arch_and_aux_weight
from .networks import SWITCHES, ArchConfig, window_factors

__all__ = ["CausalVAEFamily", "OPTIONS", "MAX_SIZE", "MAX_PARAMETERS"]

#: Keys of ``arch`` that are training options of the causal VAE, not network sizes.
OPTIONS = ("aux_weight", "orientation_loss")
#: Largest network size accepted, and most parameters of a whole model (counted on
#: the meta device before anything is allocated): no file or typo allocates gigabytes.
MAX_SIZE = 1 << 16
MAX_PARAMETERS = 200_000_000


def _size_keys() -> list[str]:
    return [f.name for f in fields(ArchConfig) if f.name != "latent_dim"]


def _check_size(config: ArchConfig, world: Any) -> None:
    """Refuse networks of more than :data:`MAX_PARAMETERS` parameters, counted without allocating them."""
    state = torch.get_rng_state()
    try:
        with torch.device("meta"):
            n = sum(p.numel() for p in CausalVAE(config, world=world).parameters())
    finally:
        torch.set_rng_state(state)
    if n > MAX_PARAMETERS:
        raise CvaeqError(
            f"causal_vae arch: these sizes make {n:,} parameters, more than the {MAX_PARAMETERS:,} "
            "allowed; choose smaller sizes"
        )


class CausalVAEFamily:
    """The ``causal_vae`` image-model family (:mod:`cvaeq.model.family`).

    It decodes binary pictures (Bernoulli logits) and 8-bit ones (a
    discretised logistic per pixel and channel, full-image networks only).
    """

    #: the pixel kinds its models decode (:func:`cvaeq.model.family.check_pixel_kind`)
    pixel_kinds = ("binary", "8bit")

    def build(self, world: Any, latent_dim: int, arch: Mapping[str, Any]) -> CausalVAE:
        """A new :class:`CausalVAE` for ``world``; bad keys or values are a one-line CvaeqError."""
        if getattr(world, "continuous", ()):
            raise CvaeqError(
                f"causal_vae models worlds whose factors all have classes; world {world.name!r} has continuous "
                f"factors ({', '.join(world.continuous)}): use --family conv_causal_vae"
            )
        arch, aux_weight = arch_and_aux_weight(
            "causal_vae", arch, _size_keys() + list(OPTIONS), latent_dim, DEFAULT_AUX_WEIGHT
        )
        orientation_loss = arch.pop("orientation_loss", "exact")
        if orientation_loss not in ORIENTATION_LOSSES:
            raise CvaeqError(
                f"causal_vae arch: orientation_loss must be one of {', '.join(ORIENTATION_LOSSES)}, "
                f"got {orientation_loss!r}"
            )
        # a world's hints: its switches, and network sizes that suit its images (checked like the user's)
        sizes = {k: v for k, v in world.model_arch.items() if k in _size_keys() and k not in SWITCHES}
        arch = {**sizes, **arch}
        for key, value in arch.items():
            integer = isinstance(value, int) and not isinstance(value, bool)
            if key in SWITCHES:
                if not integer or value not in (0, 1):
                    raise CvaeqError(f"causal_vae arch: {key} is a switch: 0 or 1, got {value!r}")
            elif not integer or not 1 <= value <= MAX_SIZE:
                raise CvaeqError(f"causal_vae arch: {key} must be an integer >= 1 (at most {MAX_SIZE}), got {value!r}")
        hints = {k: int(bool(world.model_arch[k])) for k in SWITCHES if k in world.model_arch}
        if window_factors(world) is None:
            if arch.get("window"):
                raise CvaeqError(
                    f"causal_vae arch: window=1 needs two position factors, and world {world.name!r} "
                    "names none (model_arch['window_factors']); use window=0"
                )
            hints["window"] = 0
        config = ArchConfig(
            **{**ArchConfig(latent_dim=latent_dim).to_dict(), **hints, **arch, "latent_dim": latent_dim}
        )
        _check_size(config, world)
        return CausalVAE(config, aux_weight=float(aux_weight), orientation_loss=orientation_loss, world=world)

    def arch_of(self, model: CausalVAE) -> dict[str, Any]:
        """The ArchConfig fields of ``model`` plus its ``aux_weight`` and ``orientation_loss``."""
        return {**model.config.to_dict(), "aux_weight": model.aux_weight, "orientation_loss": model.orientation_loss}
