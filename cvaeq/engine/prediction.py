"""Prediction: replay the abducted noise through the (intervened) model.

The noise sites are conditioned on the particles (``pyro.poutine.condition``)
and the model run once, vectorised over particles; the values it returns are
the counterfactual (or, without intervention, the factual) world.

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> from cvaeq.engine import abduct
>>> scm = build_scm(load_story())
>>> p = abduct(scm, {"scale": torch.tensor(5)}, 4)
>>> predict(scm, p)["scale"].tolist()
[5, 5, 5, 5]
"""

from __future__ import annotations

from torch import Tensor
from pyro import poutine

from ..errors import MechanismError
from ..scm import SCM, noise_site
from .particles import Particles

__all__ = ["predict"]


def predict(scm: SCM, particles: Particles) -> dict[str, Tensor]:
    """``{node: value [S, ...]}`` of the SCM run on the particles' noise."""
    missing = [v for v in scm.nodes if v not in particles.noise]
    if missing:
        raise MechanismError(f"the particles carry no noise for {missing[0]!r}; abduct on this SCM's nodes")
    data = {noise_site(v): particles.noise[v] for v in scm.nodes}
    return poutine.condition(scm.model, data=data)(particles.num_particles)
