"""Every hook a cvaeq plugin can implement. These docstrings are the plugin reference.

A plugin is a module (or object) with functions marked ``@cvaeq.hookimpl``,
named like the specs below, installed under the entry-point group ``cvaeq``.
Contributing hooks get a ``register`` callback and never touch a registry; the
core records which plugin supplied each contribution (``cvaeq plugins`` shows
it). The built-ins in :mod:`cvaeq.default_plugins` use these same hooks.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("cvaeq")
hookimpl = pluggy.HookimplMarker("cvaeq")

__all__ = ["hookspec", "hookimpl"]


# --------------------------------------------------------------------- stories


@hookspec
def register_stories(register: Callable[[str, str], None]) -> None:
    """Contribute named causal stories.

    Call ``register(name, path)`` once per story, ``path`` being a TOML story
    file (format: the comments of ``cvaeq/worlds/dsprites/default.toml``). The name is
    what users pass as ``--story NAME``. Registering a name twice is a
    :class:`~cvaeq.errors.PluginError`.

    >>> from pathlib import Path
    >>> @hookimpl
    ... def register_stories(register):
    ...     register("tilted", str(Path(__file__).parent / "tilted.toml"))
    """


# ------------------------------------------------------------------ mechanisms


@hookspec
def register_mechanisms(register: Callable[[str, Callable[..., object]], None]) -> None:
    """Contribute mechanism families: structural assignments for SCM nodes.

    Call ``register(name, factory)`` once per family. ``factory(**params)``
    returns a mechanism (the protocol of :mod:`cvaeq.mechanisms.base`: at least
    ``parents``, ``event_dim``, ``noise_prior(num_particles)`` and
    ``assign(parents, noise)``; optionally ``size``, ``intervenable``,
    ``log_prob``, ``abduct`` (the noise and its log-weight together, an
    :class:`~cvaeq.mechanisms.base.Abduction`), ``abduct_noise`` and
    ``propose``). Registering a name twice (in one plugin or across plugins) is a
    :class:`~cvaeq.errors.PluginError` naming
    both plugins.

    A family meant for story factors (picked per factor with
    ``mechanism = "NAME"`` in a story file) must accept
    ``factory(parents=(...), probs=table)``, the table of shape
    ``[*parent sizes, size]`` whose rows sum to 1, and give a categorical
    mechanism (``int64`` classes ``[S]``, ``event_dim = 0``, ``size``) whose
    values follow the table. :func:`cvaeq.testing.check_mechanism_family` checks
    such a family against the SCM invariants. A family for a story's
    *continuous* factors (``mechanism = "NAME"`` on one) must accept
    ``factory(parents=(...), law=Law, kinds={parent: kind}, low=, high=)``
    (:class:`cvaeq.invertible.Law`) and give a mechanism with ``continuous =
    True``, ``event_dim = 0`` and float64 values ``[S]``. A family with only
    ``noise_prior`` and ``assign`` still answers every query, through the
    engine's slower generic fallback.

    The built-in families are ``gumbel_max`` (categorical, exact abduction),
    ``continuous`` (a continuous factor's invertible law, exact abduction),
    ``bernoulli_image`` (the image) and ``gaussian_latent`` (the latent Z).

    >>> @hookimpl
    ... def register_mechanisms(register):
    ...     register("ordinal", OrdinalCategorical)   # OrdinalCategorical(parents, probs)
    """


# ------------------------------------------------------------ image mechanisms


@hookspec
def register_image_mechanisms(register: Callable[[str, Callable[..., object]], None]) -> None:
    """Contribute image mechanisms: how a picture's pixels follow from the image model and their noise.

    Call ``register(name, factory)`` once per mechanism. ``factory`` has an
    attribute ``pixel``, the pixel kind it models (``"binary"`` or
    ``"8bit"``, :data:`cvaeq.world.PIXEL_KINDS`), and
    ``factory(image_model=model, parents=(...), factors=(...), shape=image_shape)``
    returns the mechanism of the image node X (the protocol of
    :mod:`cvaeq.mechanisms.base`, with ``intervenable = False``, exact
    ``abduct`` and ``log_prob``, and ``propose`` from the model's
    q(factors | X) and q(Z | X, factors)). The SCM builder picks, for a
    model, the mechanism its attribute ``image_mechanism`` names, else the
    built-in one of its pixel kind; a mechanism whose ``pixel`` is not the
    world's is a :class:`~cvaeq.errors.MechanismError`. Registering a name
    twice is a :class:`~cvaeq.errors.PluginError` naming both plugins.

    The built-in image mechanisms are ``bernoulli`` (binary pixels,
    ``1[U < p]`` with ``U ~ Uniform(0, 1)``) and ``discretised_logistic``
    (8-bit levels, the bin of ``loc + s * eps`` with ``eps ~ Logistic(0, 1)``,
    :mod:`cvaeq.levels`); both abduct their noise exactly.

    >>> @hookimpl
    ... def register_image_mechanisms(register):
    ...     register("discretised_gaussian", discretised_gaussian_image)   # .pixel = "8bit"
    """


# ---------------------------------------------------------------------- worlds


@hookspec
def register_worlds(register: Callable[[object], None]) -> None:
    """Contribute worlds: families of images with named factors and a renderer.

    Call ``register(world)`` once per :class:`cvaeq.world.World`. Its name is
    what stories (``world = "NAME"``), checkpoints and ``--world NAME``
    refer to; registering a name twice is a :class:`~cvaeq.errors.PluginError`.
    A world declares its factors (categorical with labels, or numeric with a
    grid of values), the image shape and ``render(classes) -> images``, the
    ground truth of every counterfactual; optionally a loader of a real
    dataset file, its default story (register it with ``register_stories``),
    hints for the image model (``model_arch``) and classes that draw the same
    image (``equivalent``). The built-in world is ``dsprites``.

    >>> import numpy as np
    >>> from cvaeq.world import Factor, World
    >>> @hookimpl
    ... def register_worlds(register):
    ...     register(World("bars", (Factor("width", values=[1, 2, 3]),), image_shape=(8, 8),
    ...                    render=lambda c: np.zeros((len(c), 8, 8), np.uint8)))
    """


# ---------------------------------------------------------------- image models


@hookspec
def register_image_models(register: Callable[[str, object], None]) -> None:
    """Contribute image-model families: trainable models of p(X | factors, Z).

    Call ``register(name, family)`` once per family; the name is what
    ``cvaeq train --family NAME`` takes and what a checkpoint records. A family
    implements :class:`cvaeq.model.family.ImageModelFamily`: ``build(world,
    latent_dim, arch)`` makes an untrained ``torch.nn.Module`` and
    ``arch_of(model)`` gives the JSON-able dict that rebuilds its shapes. The
    module implements the image-model protocol (:mod:`cvaeq.image_model`:
    pixel logits or probabilities given the factors and Z, q(Z | X, factors),
    q(factors | X); optionally the encoders split into shared features and
    heads) and the training one (``loss(x, classes)``). Checkpoints
    of every family are saved and loaded by cvaeq as safetensors plus JSON,
    never pickle. Registering a name twice is a
    :class:`~cvaeq.errors.PluginError`. The built-in family is ``causal_vae``.

    >>> @hookimpl
    ... def register_image_models(register):
    ...     register("seed_mlp", SeedMLPFamily())   # see plugins/cvaeq-seedmlp
    """
