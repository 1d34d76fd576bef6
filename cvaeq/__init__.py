"""cvaeq: causal queries about images.

An SCM over a world's factors (dSprites is built in; plugins add others), a
latent Z and the image X, whose image mechanism is a learned decoder; queries
are answered by abduction, action and prediction, and scored against the
world's renderer.

The main verbs, as pyro and chirho users expect them at the top:
:func:`ask` answers a query (``cvaeq query``), :func:`true_counterfactual_for`
gives the story's own counterfactual of a factual world to compare with.
They are imported on first use, so ``import cvaeq`` stays light (no torch).

>>> from cvaeq import ask
>>> ask("P(scale | do(shape=heart))", samples=200, seed=0).rung
'interventional'
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

#: names imported on first use: {name: module}
_LAZY = {"ask": "cvaeq.query.answer", "true_counterfactual_for": "cvaeq.evaluation.truth"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cvaeq' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
    "ask",
    "hookimpl",
    "load_story",
    "true_counterfactual_for",
]
