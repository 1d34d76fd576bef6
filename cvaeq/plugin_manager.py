"""The plugin manager: entry-point group ``cvaeq``, built-ins first, lazy load,
and the one way a ``register_*`` hook is called.

Below every registry: :mod:`cvaeq.plugins` (stories, mechanism and image-model
families), :func:`cvaeq.world.get_world` (worlds) and the checks that name a
broken plugin (:mod:`cvaeq.mechanisms.checked`) all read the plugins through
:func:`collect` and :func:`get_plugin_manager`, and this module imports none of
them, so no registry and no checked object needs an import circle to say which
plugin gave it. A contribution a plugin broke is skipped with a one-line
warning (once per process) and remembered (:func:`skipped`) for the "not
available" errors; registering a name twice is a
:class:`~cvaeq.errors.PluginError`.

>>> sorted(name for name, _ in get_plugin_manager().list_name_plugin())[:1]
['cvaeq.default_plugins.image_mechanisms']
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = ["pm", "get_plugin_manager", "collect", "skipped", "warn", "DEFAULT_PLUGINS"]

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


def warn(plugin: str, what: str, e: BaseException | str) -> None:
    """Print one line on stderr saying that ``plugin`` ``what`` and is skipped, and why (once per process)."""
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
            warn(ep.name, "failed to load", e)
            continue
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or () if c.spec is None)
        if unknown:  # e.g. written for a newer cvaeq: skip it rather than fail every command
            pm.unregister(plugin)
            warn(
                ep.name,
                "implements hooks this cvaeq does not have",
                PluginError(f"{', '.join(unknown)}; upgrade cvaeq or the plugin"),
            )


_NAMED = object()


class _Duplicate(PluginError):
    """A name registered twice: an error for every command that reads the registry."""


def collect(
    hook_name: str, what: str, check: Callable[[Any], str | None] = lambda thing: None
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
                warn(
                    _plugin,
                    f"registered a {what} without a name ({_shown(thing)})",
                    f"call register({'world' if what == 'world' else 'NAME, ' + what.replace(' ', '_')})",
                )
                return
            problem = check(thing)
            if problem:
                _skipped[(what, name)] = f"plugin {_plugin!r} registered it, but {problem}"
                warn(_plugin, f"registered {what} {name!r}, which {problem},", "fix or uninstall the plugin")
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
            warn(plugin, f"failed in {hook_name}", e)
            continue
        out.update(mine)
    return out


def _shown(thing: Any) -> str:
    text = repr(thing)
    return text if len(text) <= 40 else text[:37] + "..."
