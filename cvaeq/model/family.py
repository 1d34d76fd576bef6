"""Image-model families: how cvaeq builds, trains, saves and loads an image model.

A family is registered through the ``register_image_models`` hook under a name
that checkpoints record (``meta["family"]``; files written before families
existed are ``"causal_vae"``). It implements :class:`ImageModelFamily`; the
models it builds are ``torch.nn.Module`` objects that implement

* the engine's protocol (:class:`cvaeq.mechanisms.image.ImageModel`):
  ``latent_dim``, ``pixel_logits(classes, z)`` (or ``decode_probs``),
  ``factor_logits(x)`` (q(factors | X)) and ``z_posterior(x, classes)``
  (q(Z | X, factors));
* the training protocol: ``loss(x, classes) -> (loss, parts)``, the mean
  differentiable loss per image and ``parts`` with at least ``"elbo_nats"``
  (-ELBO of log p(X | factors) per image, a float); ``forward(x, classes)``
  returns the loss alone (so DistributedDataParallel can wrap it).

Checkpoints hold the module's ``state_dict`` as safetensors and
``arch_of(model)`` as JSON: loading calls ``build(world, latent_dim, arch)``
and checks every tensor's name and shape against the built module before
copying, so a file never decides what code runs.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

__all__ = ["ImageModelFamily", "get_family", "DEFAULT_FAMILY"]

#: The family of a checkpoint that names none.
DEFAULT_FAMILY = "causal_vae"


@runtime_checkable
class ImageModelFamily(Protocol):
    """What cvaeq needs from a registered image-model family."""

    def build(self, world: Any, latent_dim: int, arch: Mapping[str, Any]) -> Any:
        """A new, untrained model for ``world`` with a ``latent_dim``-dimensional Z.

        ``arch`` holds the sizes a user asked for (``cvaeq train --arch``) or a
        checkpoint recorded (``arch_of``); missing keys take the family's
        defaults, completed by ``world.model_arch``. Bad keys or values raise
        :class:`~cvaeq.errors.CvaeqError` with a one-line message.
        """
        ...

    def arch_of(self, model: Any) -> dict[str, Any]:
        """The JSON-able architecture of ``model``: ``build(world, latent_dim, arch_of(m))``
        makes a module with the same parameter names and shapes."""
        ...


def get_family(name: str | None = None) -> ImageModelFamily:
    """A registered family by name (None: :data:`DEFAULT_FAMILY`); unknown names
    are a CvaeqError listing the registered ones."""
    from ..errors import CvaeqError
    from ..plugins import get_image_models

    name = DEFAULT_FAMILY if name is None else name
    families = get_image_models()
    if name not in families:
        raise CvaeqError(f"unknown image-model family {name!r}; known: {', '.join(sorted(families))} "
                         "(install the plugin that provides it, see `cvaeq plugins`)")
    return families[name]
