"""Mechanisms: one structural assignment ``v = f(parents, N_v)`` per SCM node.

The protocol is in :mod:`cvaeq.mechanisms.base`; the built-in families
(registered by :mod:`cvaeq.default_plugins.mechanisms`) are here.
"""

from .base import Abduction, Mechanism, abduction, can_abduct, can_log_prob, can_propose, checked_value, is_intervenable
from .continuous import ContinuousMechanism, continuous
from .gaussian import GaussianLatent, gaussian_latent
from .gumbel import GumbelMax, gumbel_max
from .image import BernoulliImage, ImageModel, bernoulli_image

__all__ = [
    "Mechanism",
    "Abduction",
    "abduction",
    "checked_value",
    "can_abduct",
    "can_log_prob",
    "can_propose",
    "is_intervenable",
    "GumbelMax",
    "gumbel_max",
    "ContinuousMechanism",
    "continuous",
    "GaussianLatent",
    "gaussian_latent",
    "BernoulliImage",
    "ImageModel",
    "bernoulli_image",
]
