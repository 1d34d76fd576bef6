"""The plugin manager: entry-point group ``cvaeq``, built-ins first, lazy load.

Built-in features are plugins in :mod:`cvaeq.default_plugins` and use the same
hooks as third-party ones. A plugin that fails to load (or whose hook raises)
is named in a one-line warning on stderr and skipped; the rest keeps working.
The core records which plugin supplied every world, image-model family, story
and mechanism family.

>>> sorted(get_mechanisms())[:2]
['bernoulli_image', 'gaussian_latent']
>>> get_mechanisms()["gumbel_max"].plugin
'cvaeq.default_plugins.mechanisms'
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import MechanismError, PluginError

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
    "MechanismFamily",
    "describe_plugins",
    "DEFAULT_PLUGINS",
]

DEFAULT_PLUGINS = (
    "cvaeq.default_plugins.worlds",
    "cvaeq.default_plugins.stories",
    "cvaeq.default_plugins.mechanisms",
    "cvaeq.default_plugins.image_models",
)

pm = pluggy.PluginManager("cvaeq")
pm.add_hookspecs(hookspecs)
_loaded = False


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, with built-ins and installed plugins loaded once.

    Installed (entry-point) plugins are skipped when ``CVAEQ_LOAD_PLUGINS=0``,
    as the test suite sets.
    """
    global _loaded
    if not _loaded:
        _loaded = True
        for name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(name), name=name)
        if os.environ.get("CVAEQ_LOAD_PLUGINS", "1") != "0":
            _load_entry_points()
        pm.check_pending()
    return pm


def _warn(plugin: str, what: str, e: BaseException) -> None:
    print(f"warning: plugin {plugin!r} {what} and is skipped: {type(e).__name__}: {e}", file=sys.stderr)


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="cvaeq"):
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as e:  # a broken plugin must not take the rest down
            _warn(ep.name, "failed to load", e)
            continue
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or () if c.spec is None)
        if unknown:  # e.g. written for a newer cvaeq: skip it rather than fail every command
            pm.unregister(plugin)
            _warn(ep.name, "implements hooks this cvaeq does not have",
                  PluginError(f"{', '.join(unknown)}; upgrade cvaeq or the plugin"))


_NAMED = object()


def _collect(hook_name: str, what: str) -> dict[str, tuple[Any, str]]:
    """Call every implementation of a ``register_*`` hook; ``{name: (thing, plugin)}``."""
    out: dict[str, tuple[Any, str]] = {}
    caller = getattr(get_plugin_manager().hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy's own call order
        plugin = impl.plugin_name

        def register(name: Any, thing: Any = _NAMED, _plugin: str = plugin) -> None:
            if thing is _NAMED:  # register(thing): the thing carries its name (worlds)
                name, thing = getattr(name, "name", None), name
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {_plugin!r} registered a {what} without a name")
            if name in out:
                raise PluginError(
                    f"{what} {name!r} is registered twice (by {out[name][1]!r} and {_plugin!r}); "
                    "rename one of them or uninstall a plugin"
                )
            out[name] = (thing, _plugin)

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as e:
            _warn(plugin, f"failed in {hook_name}", e)
    return out


def get_stories() -> dict[str, str]:
    """Registered story names and their files."""
    return {name: path for name, (path, _) in _collect("register_stories", "story").items()}


def get_story_plugins() -> dict[str, str]:
    """Registered story names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in _collect("register_stories", "story").items()}


@dataclass(frozen=True)
class MechanismFamily:
    """A registered mechanism family: its name, factory and the plugin that supplied it."""

    name: str
    factory: Callable[..., Any]
    plugin: str

    def __call__(self, **params: Any) -> Any:
        """Build a mechanism: ``factory(**params)``."""
        return self.factory(**params)


def get_mechanisms() -> dict[str, MechanismFamily]:
    """Every registered mechanism family by name."""
    return {
        name: MechanismFamily(name, factory, plugin)
        for name, (factory, plugin) in _collect("register_mechanisms", "mechanism").items()
    }


def get_mechanism_family(name: str) -> MechanismFamily:
    """One mechanism family by name; unknown names are a MechanismError listing the known ones."""
    families = get_mechanisms()
    if name not in families:
        raise MechanismError(
            f"unknown mechanism {name!r}; known: {', '.join(sorted(families))} "
            "(install the plugin that provides it, see `cvaeq plugins`)"
        )
    return families[name]


def get_worlds() -> dict[str, Any]:
    """Registered worlds by name (:class:`cvaeq.world.World` objects)."""
    from .world import World

    out = {}
    for name, (world, plugin) in _collect("register_worlds", "world").items():
        if not isinstance(world, World):
            _warn(plugin, f"registered {name!r}, which is not a cvaeq.world.World,", TypeError(type(world).__name__))
            continue
        out[name] = world
    return out


def get_world_plugins() -> dict[str, str]:
    """Registered world names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in _collect("register_worlds", "world").items()}


def get_image_models() -> dict[str, Any]:
    """Registered image-model families by name."""
    return {name: family for name, (family, _) in _collect("register_image_models", "image model").items()}


def get_image_model_plugins() -> dict[str, str]:
    """Registered image-model family names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in _collect("register_image_models", "image model").items()}


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
        "stories": dict(sorted(get_story_plugins().items())),
    }
