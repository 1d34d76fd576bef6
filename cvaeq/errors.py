"""The errors cvaeq raises on bad input.

Every error a user can cause derives from :class:`CvaeqError`; the command line
turns any of them into one line on stderr and exit code 2. Messages say what
was wrong and what to do about it. What the system or the input can cause
anywhere (:data:`ENVIRONMENT_ERRORS`) is reported by every face (the CLI, the
explorer) as the same one line, :func:`one_line`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "CvaeqError",
    "GraphError",
    "StoryError",
    "MechanismError",
    "QueryError",
    "QuerySyntaxError",
    "PluginError",
    "DataError",
    "CheckpointError",
    "plugin_error",
    "call_plugin",
    "ENVIRONMENT_ERRORS",
    "one_line",
]


class CvaeqError(Exception):
    """Base class: something the user gave cvaeq cannot be used as it is."""


class GraphError(CvaeqError):
    """The causal graph is not a DAG, or names a node it does not have."""


class StoryError(CvaeqError):
    """A story file is malformed: cycle, unknown factor or value, bad table."""


class MechanismError(CvaeqError):
    """A mechanism cannot do what a query asks of it (or is missing)."""


class QueryError(CvaeqError):
    """A query is well formed but cannot be answered as written."""

    def __init__(self, message: str, column: int | None = None, text: str | None = None):
        self.column = column
        self.text = text
        if column is not None:
            message = f"{message} (at column {column})"
        super().__init__(message)


class QuerySyntaxError(QueryError):
    """A query's text does not follow the grammar."""


class PluginError(CvaeqError):
    """A plugin is broken: bad hook implementation or duplicate registration."""


class DataError(CvaeqError):
    """A data file is missing, or has the wrong arrays, shapes or dtypes."""


class CheckpointError(CvaeqError):
    """A checkpoint is truncated, foreign or tampered with."""


def plugin_error(who: str, what: str) -> PluginError:
    """One line naming the plugin (``who``: "plugin 'x' (world 'y')") and what it broke.

    >>> str(plugin_error("plugin 'p' (world 'w')", "render gave shape (1, 2)"))
    "plugin 'p' (world 'w'): render gave shape (1, 2); fix or uninstall the plugin (`cvaeq plugins` lists it)"
    """
    return PluginError(f"{who}: {what}; fix or uninstall the plugin (`cvaeq plugins` lists it)")


def call_plugin(fail: Callable[[str], CvaeqError], name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, a plugin's code: any exception but a :class:`CvaeqError`
    (the plugin's bug) becomes ``fail("NAME() raised TYPE: message")``, one line
    of at most 200 characters of the message, without its traceback.

    >>> call_plugin(lambda what: plugin_error("plugin 'p'", what), "build", int, "x")
    Traceback (most recent call last):
    ...
    cvaeq.errors.PluginError: plugin 'p': build() raised ValueError: invalid literal for int() with base 10: 'x';
    fix or uninstall the plugin (`cvaeq plugins` lists it)
    """
    try:
        return fn(*args)
    except CvaeqError:
        raise
    except Exception as e:  # the plugin's bug, reported as one line naming it
        raise fail(f"{name}() raised {type(e).__name__}: {' '.join(str(e).split())[:200]}") from None


#: Errors the system or the input can cause anywhere: one line and exit 2 at the CLI, a 4xx/5xx
#: JSON line in the explorer (an ``OSError`` such as a full disk, ``MemoryError``, ...).
ENVIRONMENT_ERRORS = (OSError, MemoryError, RecursionError, UnicodeError)


def one_line(e: BaseException) -> str:
    """The one-line message of an environment error: what happened and what to do.

    >>> one_line(FileNotFoundError(2, "No such file or directory", "story.toml"))
    'story.toml: No such file or directory'
    """
    if isinstance(e, OSError):
        what = e.strerror or str(e) or type(e).__name__
        where = f"{e.filename}: " if e.filename else ""
        hint = "; free some space and run it again" if getattr(e, "errno", None) in (28, 122) else ""
        return f"{where}{what}{hint}"
    if isinstance(e, MemoryError):
        return "out of memory; ask for fewer images, particles or a smaller model (bounds: docs/cli.md)"
    if isinstance(e, RecursionError):
        return "the input is nested too deeply to read"
    if isinstance(e, UnicodeError):
        return f"text that is not valid UTF-8 ({getattr(e, 'reason', e)}); save files as UTF-8"
    return str(e)
