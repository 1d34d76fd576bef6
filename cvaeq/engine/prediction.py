"""Prediction: replay the abducted noise through the (intervened) model.

The walk (:mod:`cvaeq.walk`) under :class:`~cvaeq.walk.Replay`: every node's
value from its abducted noise, vectorised over particles, the walk applying
the SCM's interventions; the values are the counterfactual (or, without
intervention, the factual) world. :func:`predict_changes` computes only what
the interventions change.

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> from cvaeq.engine import abduct, intervene
>>> scm = build_scm(load_story())
>>> p = abduct(scm, {"scale": torch.tensor(5)}, 4)
>>> predict(scm, p)["scale"].tolist()
[5, 5, 5, 5]
>>> world = intervene(scm, {"shape": 0})
>>> all(torch.equal(predict(world, p)[v], predict_changes(world, p)[v]) for v in scm.nodes)
True
"""

from __future__ import annotations

from torch import Tensor

from ..errors import MechanismError
from ..scm import SCM
from ..walk import Replay, ReplayChanged, walk
from .particles import Particles

__all__ = ["predict", "predict_changes"]


def predict(scm: SCM, particles: Particles) -> dict[str, Tensor]:
    """``{node: value [S, ...]}`` of the SCM run on the particles' noise."""
    missing = [v for v in scm.nodes if v not in particles.noise]
    if missing:
        raise MechanismError(f"the particles carry no noise for {missing[0]!r}; abduct on this SCM's nodes")
    return walk(scm, Replay(particles.noise), particles.num_particles).values


def predict_changes(world: SCM, particles: Particles) -> dict[str, Tensor]:
    """:func:`predict` computing only what an intervention changes.

    Nodes that are not descendants of an intervened node keep their factual
    values (replaying their abducted noise reproduces them, a property every
    mechanism family is checked for: ``cvaeq.testing``), so only the
    intervened nodes and their descendants are recomputed, by the same
    ``assign`` calls :func:`predict` makes; the values are the same, and a
    world of a few changed factors costs a few ``assign`` calls.
    """
    changed: set[str] = set()
    for v in world.interventions:
        changed |= world.graph.descendants(v)
    missing = [v for v in world.nodes if v not in (particles.noise if v in changed else particles.values)]
    if missing:
        raise MechanismError(f"the particles carry no noise for {missing[0]!r}; abduct on this SCM's nodes")
    return walk(world, ReplayChanged(particles.noise, particles.values, changed), particles.num_particles).values
