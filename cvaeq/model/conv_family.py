"""The built-in image-model family ``conv_causal_vae``: builds and describes
:class:`~cvaeq.model.conv_vae.ConvCausalVAE` models, the convolutional causal
VAE for small 8-bit pictures with categorical and continuous factors
(Morpho-MNIST's 28×28 grey digits).

``arch`` (what ``cvaeq train --arch`` sets and checkpoints record) holds the
:class:`~cvaeq.model.conv_vae.ConvArch` sizes (``channels``, ``hidden``) and
the training option ``aux_weight``.

>>> from cvaeq.world import get_world
>>> family = ConvCausalVAEFamily()
>>> model = family.build(get_world("morphomnist"), 8, {"channels": 8, "hidden": 32})
>>> family.arch_of(model)
{'latent_dim': 8, 'channels': 8, 'hidden': 32, 'aux_weight': 10.0}
>>> family.build(get_world("dsprites"), 8, {})
Traceback (most recent call last):
...
cvaeq.errors.CvaeqError: conv_causal_vae decodes 8bit pictures; world 'dsprites' has binary pictures
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from .conv_vae import ConvCausalVAE, arch_from

__all__ = [
    "ConvCausalVAEFamily",
    "held_out_scores",
    "save_networks",
    "load_networks",
    "networks_checkpoint",
    "FAMILY",
]

#: The family's registered name.
FAMILY = "conv_causal_vae"


class ConvCausalVAEFamily:
    """The ``conv_causal_vae`` image-model family (:mod:`cvaeq.model.family`): 8-bit pictures only."""

    #: the pixel kinds its models decode (:func:`cvaeq.model.family.check_pixel_kind`)
    pixel_kinds = ("8bit",)

    def build(self, world: Any, latent_dim: int, arch: Mapping[str, Any]) -> ConvCausalVAE:
        """A new :class:`ConvCausalVAE` for ``world``; bad keys or values are a one-line CvaeqError."""
        config, aux_weight = arch_from(world, latent_dim, arch)
        return ConvCausalVAE(world, config, aux_weight=aux_weight)

    def arch_of(self, model: ConvCausalVAE) -> dict[str, Any]:
        """The :class:`~cvaeq.model.conv_vae.ConvArch` sizes of ``model`` and its ``aux_weight``."""
        return model.arch_dict()


def held_out_scores(model: ConvCausalVAE, images: np.ndarray, factors: np.ndarray, seed: int = 0) -> dict:
    """Figures of ``model`` on labelled pictures (uint8 ``(n, *image_shape)``, factors ``(n, F)``):
    training's :func:`~cvaeq.model.validation.validation_scores` on the CPU, the figures
    ``cvaeq train`` records for a world of labelled files: ``elbo_nats`` (one draw of Z seeded by
    ``seed``), ``bits_per_dim``, ``accuracy`` of each categorical factor, ``mae`` of each
    continuous one (its units), ``recon_l1`` and ``aux_nll``.
    """
    from .validation import validation_scores

    return validation_scores(model, images, np.asarray(factors), torch.device("cpu"), seed=seed, world=model.world)


def save_networks(path: str | os.PathLike, model: ConvCausalVAE, history: list) -> Path:
    """Write ``model``'s weights, arch, world and ``history`` as one safetensors file, atomically."""
    from safetensors.torch import save

    from ..paths import atomic_path

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"world": model.world.name, "family": FAMILY, "arch": model.arch_dict(), "history": history}
    blob = save(tensors, metadata={"format": "cvaeq-networks", "meta": json.dumps(meta)})
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(blob)
    return path


def load_networks(path: str | os.PathLike) -> tuple[ConvCausalVAE, dict]:
    """The model and metadata :func:`save_networks` wrote (shapes checked before copying)."""
    from safetensors.torch import load

    from ..world import get_world

    blob = Path(path).read_bytes()
    try:
        tensors = load(blob)
        header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
        meta = json.loads(header["__metadata__"]["meta"])
    except Exception:  # safetensors raises its own error type on a malformed payload
        raise CheckpointError(f"{path}: not a networks file written by save_networks") from None
    arch = dict(meta["arch"])
    model = ConvCausalVAEFamily().build(get_world(meta["world"]), int(arch.pop("latent_dim")), arch)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if {k: tuple(v.shape) for k, v in tensors.items()} != expected:
        raise CheckpointError(f"{path}: the weights do not match the recorded architecture")
    model.load_state_dict(tensors)
    model.eval()
    return model, meta


def networks_checkpoint(networks: str | os.PathLike, story, out: str | os.PathLike, train_config: dict) -> Path:
    """A cvaeq checkpoint of the networks :func:`save_networks` wrote, with ``story``.

    The networks of a model trained on a world's labelled files do not depend
    on the story (the factors are observed); the checkpoint adds the story
    (its text, graph and latent), the factor mechanisms fitted from the
    training rows' labels as ``cvaeq train`` fits them
    (:func:`cvaeq.model.train.fit_learned_laws` for the continuous ones the story
    leaves to be learned), and the history. ``train_config`` records how the networks were
    trained. Without optimizer state (it cannot be resumed).
    """
    from .checkpoint import save_checkpoint
    from .factors import fit_factor_logits
    from .labelled_data import labelled_split
    from .train import fit_learned_laws

    model, meta = load_networks(networks)
    if story.world.name != model.world.name or story.latent_dim != model.latent_dim:
        raise CheckpointError(
            f"{networks}: networks of world {model.world.name!r} with a {model.latent_dim}-dimensional Z; "
            f"story {story.name!r} is about world {story.world.name!r} with latent_dim {story.latent_dim}"
        )
    (_, factors), _ = labelled_split(story.world)
    seed = int(train_config.get("seed", 0))
    tables = fit_factor_logits(factors, story, seed=seed)
    history = meta.get("history", [])
    return save_checkpoint(
        out,
        model,
        story,
        tables,
        family=FAMILY,
        train_config=train_config,
        epoch=len(history),
        history=history,
        data_seed=seed,
        laws=fit_learned_laws(factors, story),
    )
