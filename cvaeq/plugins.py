"""The plugin manager: entry-point group ``cvaeq``, built-ins first, lazy load.

Built-in features are plugins in :mod:`cvaeq.default_plugins` and use the same
hooks as third-party ones. A plugin that fails to load (an exception, or even
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
    "get_image_mechanisms",
    "get_image_mechanism",
    "image_mechanism_for",
    "ImageMechanism",
    "MechanismFamily",
    "describe_plugins",
    "DEFAULT_PLUGINS",
    "skipped",
]

DEFAULT_PLUGINS = (
    "cvaeq.default_plugins.worlds",
    "cvaeq.default_plugins.stories",
    "cvaeq.default_plugins.mechanisms",
    "cvaeq.default_plugins.image_models",
    "cvaeq.default_plugins.image_mechanisms",
)

class _PluginManager(pluggy.PluginManager):
    """pluggy's manager; a change of plugins lets the warnings about them be given
    again, and forgets what the old set skipped."""

    def register(self, plugin, name=None):
        _warned.clear()
        _skipped.clear()
        return super().register(plugin, name)

    def unregister(self, plugin=None, name=None):
        _warned.clear()
        _skipped.clear()
        return super().unregister(plugin, name)


#: Warnings already printed (each is printed once, however often the registry is read).
_warned: set[str] = set()
#: ``{(kind, name): why}``: contributions skipped because their plugin broke them.
_skipped: dict[tuple[str, str], str] = {}

pm = _PluginManager("cvaeq")
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


def _warn(plugin: str, what: str, e: BaseException | str) -> None:
    why = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
    line = " ".join(f"warning: plugin {plugin!r} {what} and is skipped: {why}".split())
    if line not in _warned:
        _warned.add(line)
        print(line, file=sys.stderr)


def skipped(kind: str, name: str) -> str | None:
    """Why the ``kind`` (``"world"``, ``"mechanism"``, ...) called ``name`` was
    skipped, if a plugin registered it and broke it; for "unknown NAME" errors."""
    return _skipped.get((kind, name))


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="cvaeq"):
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # a broken plugin (even one calling sys.exit) must not take the rest down
            _warn(ep.name, "failed to load", e)
            continue
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or () if c.spec is None)
        if unknown:  # e.g. written for a newer cvaeq: skip it rather than fail every command
            pm.unregister(plugin)
            _warn(ep.name, "implements hooks this cvaeq does not have",
                  PluginError(f"{', '.join(unknown)}; upgrade cvaeq or the plugin"))


_NAMED = object()


class _Duplicate(PluginError):
    """A name registered twice: an error for every command that reads the registry."""


def _collect(hook_name: str, what: str, check: Callable[[Any], str | None] = lambda thing: None
             ) -> dict[str, tuple[Any, str]]:
    """Call every implementation of a ``register_*`` hook; ``{name: (thing, plugin)}``.

    ``check(thing)`` says what is wrong with a registered thing (None: nothing);
    such a registration, one without a name, and every registration of a hook
    that raises are skipped with a one-line warning naming the plugin.
    """
    out: dict[str, tuple[Any, str]] = {}
    caller = getattr(get_plugin_manager().hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy's own call order
        plugin = impl.plugin_name
        mine: dict[str, tuple[Any, str]] = {}

        def register(name: Any = _NAMED, thing: Any = _NAMED, _plugin: str = plugin, _mine=mine) -> None:
            if thing is _NAMED:  # register(thing): the thing carries its name (worlds)
                name, thing = getattr(name, "name", None), name
            if not isinstance(name, str) or not name:
                _warn(_plugin, f"registered a {what} without a name ({_shown(thing)})",
                      f"call register({'world' if what == 'world' else 'NAME, ' + what.replace(' ', '_')})")
                return
            problem = check(thing)
            if problem:
                _skipped[(what, name)] = f"plugin {_plugin!r} registered it, but {problem}"
                _warn(_plugin, f"registered {what} {name!r}, which {problem},", "fix or uninstall the plugin")
                return
            if name in out or name in _mine:
                first = (out.get(name) or _mine[name])[1]
                raise _Duplicate(
                    f"{what} {name!r} is registered twice (by {first!r} and {_plugin!r}); "
                    "rename one of them or uninstall a plugin"
                )
            _mine[name] = (thing, _plugin)

        try:
            impl.function(register=register)
        except _Duplicate:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # a hook that raises (or exits) loses its plugin's contributions, not ours
            for name in mine:
                _skipped[(what, name)] = f"plugin {plugin!r} failed while registering it"
            _warn(plugin, f"failed in {hook_name}", e)
            continue
        out.update(mine)
    return out


def _shown(thing: Any) -> str:
    text = repr(thing)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_story(path: Any) -> str | None:
    if not isinstance(path, (str, os.PathLike)):
        return f"is {type(path).__name__}, not the path of a story file"
    return None


def _check_factory(factory: Any) -> str | None:
    return None if callable(factory) else f"is {type(factory).__name__}, not a callable factory"


def _check_world(world: Any) -> str | None:
    from .world import World

    return None if isinstance(world, World) else f"is {type(world).__name__}, not a cvaeq.world.World"


def _check_family(family: Any) -> str | None:
    missing = [m for m in ("build", "arch_of") if not callable(getattr(family, m, None))]
    if missing:
        return f"has no {' or '.join(m + '()' for m in missing)} (see cvaeq.model.family.ImageModelFamily)"
    return None


def get_stories() -> dict[str, str]:
    """Registered story names and their files."""
    return {name: str(path) for name, (path, _) in _collect("register_stories", "story", _check_story).items()}


def get_story_plugins() -> dict[str, str]:
    """Registered story names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in _collect("register_stories", "story", _check_story).items()}


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
        from .errors import CvaeqError
        from .mechanisms.checked import CheckedMechanism

        try:
            built = self.factory(**params)
        except CvaeqError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {self.plugin!r} (mechanism {self.name!r}): building it raised "
                              f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; fix or uninstall the plugin") from None
        return CheckedMechanism(built, self.name, self.plugin)


def get_mechanisms() -> dict[str, MechanismFamily]:
    """Every registered mechanism family by name."""
    return {
        name: MechanismFamily(name, factory, plugin)
        for name, (factory, plugin) in _collect("register_mechanisms", "mechanism", _check_factory).items()
    }


def get_mechanism_family(name: str) -> MechanismFamily:
    """One mechanism family by name; unknown names are a MechanismError listing the known ones."""
    families = get_mechanisms()
    if name not in families and skipped("mechanism", name):
        raise PluginError(f"mechanism {name!r} is not available: {skipped('mechanism', name)}")
    if name not in families:
        raise MechanismError(
            f"unknown mechanism {name!r}; known: {', '.join(sorted(families))} "
            "(install the plugin that provides it, see `cvaeq plugins`)"
        )
    return families[name]


def get_worlds() -> dict[str, Any]:
    """Registered worlds by name (:class:`cvaeq.world.World` objects)."""
    return {name: world for name, (world, _) in _collect("register_worlds", "world", _check_world).items()}


def get_world_plugins() -> dict[str, str]:
    """Registered world names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in _collect("register_worlds", "world", _check_world).items()}


def get_image_models() -> dict[str, Any]:
    """Registered image-model families by name."""
    return {name: family for name, (family, _) in
            _collect("register_image_models", "image model", _check_family).items()}


def get_image_model_plugins() -> dict[str, str]:
    """Registered image-model family names and the plugin that supplied each."""
    return {name: plugin for name, (_, plugin) in
            _collect("register_image_models", "image model", _check_family).items()}


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
            raise PluginError(f"plugin {self.plugin!r} (image mechanism {self.name!r}): building it raised "
                              f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; fix or uninstall the plugin"
                              ) from None


def get_image_mechanisms() -> dict[str, ImageMechanism]:
    """Every registered image mechanism by name.

    >>> {n: m.pixel for n, m in sorted(get_image_mechanisms().items())}
    {'bernoulli': 'binary', 'discretised_logistic': '8bit'}
    """
    return {
        name: ImageMechanism(name, factory, factory.pixel, plugin)
        for name, (factory, plugin) in
        _collect("register_image_mechanisms", "image mechanism", _check_image_mechanism).items()
    }


def get_image_mechanism(name: str) -> ImageMechanism:
    """One image mechanism by name; unknown names are a MechanismError listing the known ones."""
    found = get_image_mechanisms()
    if name not in found and skipped("image mechanism", name):
        raise PluginError(f"image mechanism {name!r} is not available: {skipped('image mechanism', name)}")
    if name not in found:
        raise MechanismError(f"unknown image mechanism {name!r}; known: {', '.join(sorted(found))} "
                             "(install the plugin that provides it, see `cvaeq plugins`)")
    return found[name]


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
        raise MechanismError(f"the image model decodes {pixel} pixels but world {world.name!r} has {world.pixel} "
                             f"pixels; use a model trained on that world")
    name = getattr(image_model, "image_mechanism", None) or PIXEL_MECHANISMS.get(pixel)
    if not isinstance(name, str):
        raise MechanismError(f"no image mechanism for {pixel!r} pixels; name one with the model's image_mechanism")
    mechanism = get_image_mechanism(name)
    if mechanism.pixel != world.pixel:
        raise MechanismError(f"image mechanism {name!r} models {mechanism.pixel} pixels but world {world.name!r} "
                             f"has {world.pixel} pixels")
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
