"""Every hook a cvaeq plugin can implement. These docstrings are the plugin reference.

A plugin is a module (or object) with functions marked ``@cvaeq.hookimpl``,
named like the specs below, installed under the entry-point group ``cvaeq``.
Contributing hooks get a ``register`` callback and never touch a registry.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("cvaeq")
hookimpl = pluggy.HookimplMarker("cvaeq")

__all__ = ["hookspec", "hookimpl"]


# --------------------------------------------------------------------- stories


@hookspec
def register_stories(register: Callable[[str, str], None]) -> None:
    """Contribute named causal stories.

    Call ``register(name, path)`` once per story, ``path`` being a TOML story
    file (format: the comments of ``cvaeq/stories/default.toml``). The name is
    what users pass as ``--story NAME``. Registering a name twice is a
    :class:`~cvaeq.errors.PluginError`.

    >>> from pathlib import Path
    >>> @hookimpl
    ... def register_stories(register):
    ...     register("tilted", str(Path(__file__).parent / "tilted.toml"))
    """
