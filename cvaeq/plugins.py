"""The plugin manager: entry-point group ``cvaeq``, built-ins first, lazy load.

Built-in features are plugins in :mod:`cvaeq.default_plugins` and use the same
hooks as third-party ones. A plugin that fails to load is named in a one-line
warning and skipped; the rest keeps working.
"""

from __future__ import annotations

import importlib
import os
import sys

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = ["pm", "get_plugin_manager", "get_stories", "DEFAULT_PLUGINS"]

DEFAULT_PLUGINS = ("cvaeq.default_plugins.stories",)

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


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="cvaeq"):
        if pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:  # a broken plugin must not take the rest down
            print(f"warning: plugin {ep.name!r} failed to load and is skipped: {type(e).__name__}: {e}", file=sys.stderr)


def get_stories() -> dict[str, str]:
    """Registered story names and their files."""
    out: dict[str, str] = {}

    def register(name: str, path: str) -> None:
        if name in out:
            raise PluginError(f"story {name!r} is registered twice; rename one of them")
        out[name] = path

    get_plugin_manager().hook.register_stories(register=register)
    return out
