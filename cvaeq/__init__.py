"""cvaeq: causal queries about images.

An SCM over a world's factors (dSprites is built in; plugins add others), a
latent Z and the image X, whose image mechanism is a learned decoder; queries
are answered by abduction, action and prediction, and scored against the
world's renderer.
"""

from .errors import (
    CheckpointError,
    CvaeqError,
    DataError,
    GraphError,
    MechanismError,
    PluginError,
    QueryError,
    QuerySyntaxError,
    StoryError,
)
from .hookspecs import hookimpl
from .story import Story, load_story

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CvaeqError",
    "DataError",
    "GraphError",
    "MechanismError",
    "PluginError",
    "QueryError",
    "QuerySyntaxError",
    "StoryError",
    "Story",
    "hookimpl",
    "load_story",
]
