"""Image-model families: how cvaeq builds, trains, saves and loads an image model.

A family is registered through the ``register_image_models`` hook under a name
that checkpoints record (``meta["family"]``; files written before families
existed are ``"causal_vae"``). It implements :class:`ImageModelFamily`; the
models it builds are ``torch.nn.Module`` objects that implement

* the image-model protocol (:mod:`cvaeq.image_model`): required
  ``latent_dim``, ``pixel_logits(classes, z)`` (or ``decode_probs``),
  ``factor_logits(x)`` (q(factors | X)) and ``z_posterior(x, classes)``
  (q(Z | X, factors)); optional the split encoder (``features``,
  ``factor_logits_of``, ``z_posterior_of``) and ``pixel_dtype``;
* the training protocol: ``loss(x, classes) -> (loss, parts)``, the mean
  differentiable loss per image and ``parts`` with at least ``"elbo_nats"``
  (-ELBO of log p(X | factors) per image, a float); ``forward(x, classes)``
  returns the loss alone (so DistributedDataParallel can wrap it); under
  DDP, training reads that step's parts from ``model._parts`` when the model
  leaves them there.

A family declares the pixel kinds its models decode as ``pixel_kinds``
(a tuple of :data:`cvaeq.world.PIXEL_KINDS` names; a family that declares
none decodes ``("binary",)``, as every family written before 8-bit pictures);
training or loading one for a world of another kind is a one-line error
(:func:`check_pixel_kind`). A model of 8-bit pictures has ``pixel = "8bit"``
and gives ``pixel_levels(classes, z) -> (loc, log_scale)`` instead of
Bernoulli logits.

Checkpoints hold the module's ``state_dict`` as safetensors and
``arch_of(model)`` as JSON: loading calls ``build(world, latent_dim, arch)``
and checks every tensor's name and shape against the built module before
copying, so a file never decides what code runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ImageModelFamily",
    "CheckedFamily",
    "get_family",
    "parse_arch_option",
    "check_pixel_kind",
    "arch_and_aux_weight",
    "pixel_kinds",
    "default_family",
    "DEFAULT_FAMILY",
]

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


class CheckedFamily:
    """A plugin's image-model family whose answers are checked where they enter:
    ``build`` gives a ``torch.nn.Module`` with the image-model protocol
    (:func:`cvaeq.image_model.missing_members`), ``arch_of`` a dict that
    is JSON (a checkpoint records it). A call that raises (other than a
    CvaeqError, the family's own message about a bad ``--arch``) or returns
    anything else is a one-line PluginError naming the plugin and the family.
    The models it builds are checked in use by
    :class:`~cvaeq.mechanisms.checked.CheckedImageModel`.
    """

    def __init__(self, inner: Any, name: str, plugin: str) -> None:
        self.inner, self.name, self.plugin = inner, name, plugin

    @property  # type: ignore[misc]  # a proxy's class is its inner family's
    def __class__(self):  # isinstance(family, PluginsOwnClass) keeps working
        return type(self.inner)

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def _fail(self, what: str):
        from ..errors import plugin_error

        return plugin_error(f"plugin {self.plugin!r} (image-model family {self.name!r})", what)

    def _call(self, what: str, fn, *args):
        from ..errors import call_plugin

        return call_plugin(self._fail, what, fn, *args)

    def build(self, world: Any, latent_dim: int, arch: Mapping[str, Any]) -> Any:
        import torch

        from ..image_model import missing_members

        model = self._call("build", self.inner.build, world, latent_dim, arch)
        if not isinstance(model, torch.nn.Module):
            raise self._fail(f"build() returned {type(model).__name__}, not a torch.nn.Module")
        missing = missing_members(model)
        if missing:
            raise self._fail(f"build() returned a {type(model).__name__} without {missing}")
        return model

    def arch_of(self, model: Any) -> dict[str, Any]:
        import json

        arch = self._call("arch_of", self.inner.arch_of, model)
        try:
            if not isinstance(arch, Mapping):
                raise TypeError(type(arch).__name__)
            json.dumps(dict(arch), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise self._fail(f"arch_of() returned what a checkpoint cannot record as JSON ({e})") from None
        return dict(arch)


def default_family(world: Any) -> str:
    """The family a new run for ``world`` uses when none is named: ``conv_causal_vae``
    (small 8-bit pictures with continuous factors) for a world with a continuous
    factor, else :data:`DEFAULT_FAMILY`.

    >>> from cvaeq.world import get_world
    >>> default_family(get_world("morphomnist")), default_family(get_world("dsprites"))
    ('conv_causal_vae', 'causal_vae')
    """
    return "conv_causal_vae" if getattr(world, "continuous", ()) else DEFAULT_FAMILY


def pixel_kinds(family: Any) -> tuple[str, ...]:
    """The pixel kinds ``family`` decodes: its ``pixel_kinds``, else ``("binary",)``."""
    kinds = getattr(family, "pixel_kinds", None)
    if kinds is None:
        return ("binary",)
    if isinstance(kinds, str):
        return (kinds,)
    return tuple(str(k) for k in kinds)


def check_pixel_kind(family: Any, name: str, world: Any) -> None:
    """A one-line CvaeqError unless ``family`` (registered as ``name``) decodes ``world``'s pixel kind.

    >>> from cvaeq.world import get_world
    >>> check_pixel_kind(object(), "mine", get_world("colour_pendulum"))
    Traceback (most recent call last):
    ...
    cvaeq.errors.CvaeqError: image-model family 'mine' decodes binary pictures, and world 'colour_pendulum' has ...
    """
    from ..errors import CvaeqError

    kinds = pixel_kinds(family)
    if world.pixel not in kinds:
        raise CvaeqError(
            f"image-model family {name!r} decodes {' and '.join(kinds)} pictures, and world "
            f"{world.name!r} has {world.pixel} pictures; use a family that decodes them "
            "(causal_vae decodes binary and 8bit, conv_causal_vae 8bit)"
        )


def get_family(name: str | None = None) -> ImageModelFamily:
    """A registered family by name (None: :data:`DEFAULT_FAMILY`); unknown names
    are a CvaeqError listing the registered ones. A plugin's family comes
    wrapped in :class:`CheckedFamily`."""
    from ..errors import CvaeqError, PluginError
    from ..plugins import DEFAULT_PLUGINS, get_image_model_plugins, get_image_models, skipped

    name = DEFAULT_FAMILY if name is None else name
    families = get_image_models()
    if name not in families and isinstance(name, str) and skipped("image model", name):
        raise PluginError(f"image-model family {name!r} is not available: {skipped('image model', name)}")
    if name not in families:
        raise CvaeqError(
            f"unknown image-model family {name!r}; known: {', '.join(sorted(families))} "
            "(install the plugin that provides it, see `cvaeq plugins`)"
        )
    plugin = get_image_model_plugins()[name]
    return families[name] if plugin in DEFAULT_PLUGINS else CheckedFamily(families[name], name, plugin)


def parse_arch_option(text: str) -> dict[str, Any]:
    """``cvaeq train --arch "key=value,..."`` as a dict: integers, numbers or
    words, as written. Which keys and values are allowed is the family's
    ``build``'s to say.

    >>> parse_arch_option("dec_hidden=256, aux_weight=2.5,orientation_loss=exact")
    {'dec_hidden': 256, 'aux_weight': 2.5, 'orientation_loss': 'exact'}
    """
    from ..errors import CvaeqError

    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key.isidentifier():
            raise CvaeqError(f"--arch: expected key=value pairs separated by commas, e.g. hidden=64; got {part!r}")
        if key in out:
            raise CvaeqError(f"--arch: {key} is given twice")
        out[key] = _arch_value(value)
    if not out:
        raise CvaeqError("--arch: give at least one key=value pair, e.g. --arch hidden=64")
    return out


def _arch_value(text: str) -> Any:
    """An --arch value: an int, else a float, else the word itself."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def arch_and_aux_weight(
    family: str, arch: Mapping[str, Any], allowed: Sequence[str], latent_dim: int, default_aux: float
) -> tuple[dict[str, Any], float]:
    """What every built-in family checks first in an ``--arch``: each key among ``allowed``
    (``latent_dim`` may be given only as the story's) and ``aux_weight`` a number >= 0.

    Returns the other keys, for the family to check, and the auxiliary weight;
    each bad key or value is a one-line CvaeqError naming ``family``.
    """
    from ..errors import CvaeqError

    rest = dict(arch)
    for key in rest:
        if key != "latent_dim" and key not in allowed:
            raise CvaeqError(f"{family} arch: unknown key {key!r}; expected keys among {', '.join(allowed)}")
    if rest.pop("latent_dim", latent_dim) != latent_dim:
        raise CvaeqError(f"{family} arch: latent_dim is set by the story (its latent_dim); leave it out")
    aux = rest.pop("aux_weight", default_aux)
    if isinstance(aux, bool) or not isinstance(aux, (int, float)) or not (math.isfinite(aux) and aux >= 0):
        raise CvaeqError(f"{family} arch: aux_weight must be a number >= 0, got {aux!r}")
    return rest, float(aux)
