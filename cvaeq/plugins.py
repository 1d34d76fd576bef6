"""What the plugins contributed, by name: stories, mechanism families, image-model
families and worlds, each with the plugin that supplied it.

The manager (entry-point group ``cvaeq``, built-ins first, lazy load) and the
one way a ``register_*`` hook is called are :mod:`cvaeq.plugin_manager`; the
worlds' registry is :mod:`cvaeq.world`'s (re-exported here). Built-in
features are plugins in :mod:`cvaeq.default_plugins` and use the same hooks as
third-party ones. A plugin that fails to load (an exception, or even
``SystemExit``, at import), whose hook raises, or that registers something
that is not what the hook takes (``register(42)``, an image-model family
without ``build``) is named in a one-line warning on stderr (once per
process) and that contribution is skipped; the built-ins and other plugins
keep working, and a command that asks for a skipped contribution by name is
told why it is missing. Registering a name twice is a
:class:`~cvaeq.errors.PluginError`. What a plugin's objects return is checked
where it enters the core: a mechanism's values
(:mod:`cvaeq.mechanisms.checked`), a world's images
(:meth:`cvaeq.world.World.render_checked`) and laws (the story reads them).
The core records which plugin supplied every world, image-model family, story,
mechanism family and image mechanism.

>>> sorted(get_mechanisms())[:2]
['bernoulli_image', 'continuous']
>>> get_mechanisms()["gumbel_max"].plugin
'cvaeq.default_plugins.mechanisms'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CvaeqError, MechanismError, PluginError
from .plugin_manager import DEFAULT_PLUGINS, collect, get_plugin_manager, pm, skipped
from .world import get_world_plugins, get_worlds

__all__ = [
    "pm",
    "get_plugin_manager",
    "get_stories",
    "get_story_plugins",
    "get_mechanisms",
    "get_mechanism_family",
    "get_worlds",
    "get_world_plugins",
    "get_image_models",
    "get_image_model_plugins",
    "get_image_mechanisms",
    "get_image_mechanism",
    "image_mechanism_for",
    "ImageMechanism",
    "MechanismFamily",
    "describe_plugins",
    "DEFAULT_PLUGINS",
    "skipped",
]


def _check_story(path: Any) -> str | None:
    if not isinstance(path, (str, os.PathLike)):
        return f"is {type(path).__name__}, not the path of a story file"
    return None


def _check_factory(factory: Any) -> str | None:
    return None if callable(factory) else f"is {type(factory).__name__}, not a callable factory"


def _check_family(family: Any) -> str | None:
    missing = [m for m in ("build", "arch_of") if not callable(getattr(family, m, None))]
    if missing:
        return f"has no {' or '.join(m + '()' for m in missing)} (see cvaeq.model.family.ImageModelFamily)"
    return None


def get_stories() -> dict[str, str]:
    """Registered story names and their files."""
    return {name: str(path) for name, (path, _) in collect("register_stories", "story", _check_story).items()}


def get_story_plugins() -> dict[str, str]:
    """Registered story names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in collect("register_stories", "story", _check_story).items()}


@dataclass(frozen=True)
class MechanismFamily:
    """A registered mechanism family: its name, factory and the plugin that supplied it."""

    name: str
    factory: Callable[..., Any]
    plugin: str

    def __call__(self, **params: Any) -> Any:
        """Build a mechanism: ``factory(**params)``. A plugin's mechanism comes
        wrapped in :class:`~cvaeq.mechanisms.checked.CheckedMechanism`, which
        checks what it returns; a factory that raises is a PluginError naming it."""
        if self.plugin in DEFAULT_PLUGINS:
            return self.factory(**params)
        from .mechanisms.checked import CheckedMechanism  # here: it imports torch

        try:
            built = self.factory(**params)
        except CvaeqError:
            raise
        except Exception as e:
            raise PluginError(
                f"plugin {self.plugin!r} (mechanism {self.name!r}): building it raised "
                f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; fix or uninstall the plugin"
            ) from None
        return CheckedMechanism(built, self.name, self.plugin)


def get_mechanisms() -> dict[str, MechanismFamily]:
    """Every registered mechanism family by name."""
    return {
        name: MechanismFamily(name, factory, plugin)
        for name, (factory, plugin) in collect("register_mechanisms", "mechanism", _check_factory).items()
    }


def get_mechanism_family(name: str) -> MechanismFamily:
    """One mechanism family by name; unknown names are a MechanismError listing the known ones."""
    return _by_name(get_mechanisms(), "mechanism", name)


def _by_name(found: dict[str, Any], what: str, name: str) -> Any:
    """``found[name]``; else why not: a PluginError when a plugin registered it and broke
    it, a MechanismError listing the known names otherwise."""
    if name not in found and skipped(what, name):
        raise PluginError(f"{what} {name!r} is not available: {skipped(what, name)}")
    if name not in found:
        raise MechanismError(
            f"unknown {what} {name!r}; known: {', '.join(sorted(found))} "
            "(install the plugin that provides it, see `cvaeq plugins`)"
        )
    return found[name]


def get_image_models() -> dict[str, Any]:
    """Registered image-model families by name."""
    return {
        name: family for name, (family, _) in collect("register_image_models", "image model", _check_family).items()
    }


def get_image_model_plugins() -> dict[str, str]:
    """Registered image-model family names and the plugin that supplied each."""
    return {
        name: plugin for name, (_, plugin) in collect("register_image_models", "image model", _check_family).items()
    }


def _check_image_mechanism(factory: Any) -> str | None:
    from .world import PIXEL_KINDS

    if not callable(factory):
        return f"is {type(factory).__name__}, not a callable factory"
    if getattr(factory, "pixel", None) not in PIXEL_KINDS:
        return f"has no attribute pixel naming its pixel kind ({', '.join(PIXEL_KINDS)})"
    return None


@dataclass(frozen=True)
class ImageMechanism:
    """A registered image mechanism: its name, factory, pixel kind and the plugin that supplied it."""

    name: str
    factory: Callable[..., Any]
    pixel: str
    plugin: str

    def __call__(self, **params: Any) -> Any:
        """Build the image node's mechanism: ``factory(**params)``; a plugin's
        factory that raises is a PluginError naming it."""
        if self.plugin in DEFAULT_PLUGINS:
            return self.factory(**params)
        from .errors import CvaeqError

        try:
            return self.factory(**params)
        except CvaeqError:
            raise
        except Exception as e:
            raise PluginError(
                f"plugin {self.plugin!r} (image mechanism {self.name!r}): building it raised "
                f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; fix or uninstall the plugin"
            ) from None


def get_image_mechanisms() -> dict[str, ImageMechanism]:
    """Every registered image mechanism by name.

    >>> {n: m.pixel for n, m in sorted(get_image_mechanisms().items())}
    {'bernoulli': 'binary', 'discretised_logistic': '8bit'}
    """
    return {
        name: ImageMechanism(name, factory, factory.pixel, plugin)
        for name, (factory, plugin) in collect(
            "register_image_mechanisms", "image mechanism", _check_image_mechanism
        ).items()
    }


def get_image_mechanism(name: str) -> ImageMechanism:
    """One image mechanism by name; unknown names are a MechanismError listing the known ones."""
    return _by_name(get_image_mechanisms(), "image mechanism", name)


def image_mechanism_for(image_model: Any, world: Any) -> ImageMechanism:
    """The image mechanism of ``image_model`` in ``world``: the one the model
    names (its attribute ``image_mechanism``), else the built-in one of its
    pixel kind (attribute ``pixel``, absent: ``"binary"``); the model's and
    the mechanism's pixel kind must be the world's (a MechanismError otherwise).

    >>> from cvaeq.world import get_world
    >>> image_mechanism_for(object(), get_world("dsprites")).name
    'bernoulli'
    """
    from .mechanisms.image_mechanisms import PIXEL_MECHANISMS

    pixel = getattr(image_model, "pixel", "binary")
    if pixel != world.pixel:
        raise MechanismError(
            f"the image model decodes {pixel} pixels but world {world.name!r} has {world.pixel} "
            f"pixels; use a model trained on that world"
        )
    name = getattr(image_model, "image_mechanism", None) or PIXEL_MECHANISMS.get(pixel)
    if not isinstance(name, str):
        raise MechanismError(f"no image mechanism for {pixel!r} pixels; name one with the model's image_mechanism")
    mechanism = get_image_mechanism(name)
    if mechanism.pixel != world.pixel:
        raise MechanismError(
            f"image mechanism {name!r} models {mechanism.pixel} pixels but world {world.name!r} "
            f"has {world.pixel} pixels"
        )
    return mechanism


def describe_plugins() -> dict[str, Any]:
    """What ``cvaeq plugins`` prints: every plugin and its hooks, every contribution and its plugin.

    >>> describe_plugins()["mechanisms"]["gumbel_max"]
    'cvaeq.default_plugins.mechanisms'
    """
    pm = get_plugin_manager()
    plugins = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np_: np_[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        plugins.append({"name": name, "hooks": hooks})
    mechanisms = {n: f.plugin for n, f in sorted(get_mechanisms().items())}
    return {
        "plugins": plugins,
        "worlds": dict(sorted(get_world_plugins().items())),
        "image_models": dict(sorted(get_image_model_plugins().items())),
        "mechanisms": mechanisms,
        "image_mechanisms": {n: m.plugin for n, m in sorted(get_image_mechanisms().items())},
        "stories": dict(sorted(get_story_plugins().items())),
    }
