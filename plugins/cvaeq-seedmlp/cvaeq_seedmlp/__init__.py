"""cvaeq plugin: the ``seed_mlp`` image-model family, the seed's MLP CVAE.

The worked example of bringing your own image model to cvaeq, and the first
baseline of the comparison table in ``docs/models.md``. The model
(:class:`SeedMLP`) is the seed's conditional VAE of fully connected layers
(q(Z | X, y) and p(X | y, Z), softplus, Bernoulli pixels), generic over any
world, plus the q(factors | X) classifier the engine needs for abduction from
an image; the family (:class:`SeedMLPFamily`) builds it from a world and
rebuilds it from a checkpoint's recorded architecture.

It plugs in through one hook:

>>> from cvaeq.plugins import get_plugin_manager, get_image_models
>>> import cvaeq_seedmlp
>>> pm = get_plugin_manager()
>>> fresh = not pm.is_registered(cvaeq_seedmlp)
>>> _ = pm.register(cvaeq_seedmlp, name="cvaeq-seedmlp") if fresh else None
>>> isinstance(get_image_models()["seed_mlp"], SeedMLPFamily)
True
>>> _ = pm.unregister(cvaeq_seedmlp) if fresh else None
"""

from __future__ import annotations

from cvaeq import hookimpl

from .family import ARCH_KEYS, SeedMLPFamily
from .model import DEFAULT_AUX_WEIGHT, DEFAULT_HIDDEN, SeedMLP

__all__ = [
    "SeedMLP",
    "SeedMLPFamily",
    "ARCH_KEYS",
    "DEFAULT_HIDDEN",
    "DEFAULT_AUX_WEIGHT",
    "register_image_models",
    "FAMILY",
]

#: The name checkpoints record and ``cvaeq train --family`` takes.
FAMILY = "seed_mlp"


@hookimpl
def register_image_models(register):
    register(FAMILY, SeedMLPFamily())
