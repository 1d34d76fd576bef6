"""The errors cvaeq raises on bad input.

Every error a user can cause derives from :class:`CvaeqError`; the command line
turns any of them into one line on stderr and exit code 2. Messages say what
was wrong and what to do about it.
"""

from __future__ import annotations

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
