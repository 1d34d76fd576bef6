"""The learned half of the SCM: image-model families (the causal VAE built
in), their training and checkpoints.

>>> from cvaeq.model import get_family
>>> from cvaeq.world import get_world
>>> model = get_family("causal_vae").build(get_world("dsprites"), 6, {})
>>> type(model).__name__, model.latent_dim
('WindowCausalVAE', 6)
"""

from .checkpoint import Checkpoint, export_checkpoint, load_checkpoint, save_checkpoint
from .cvae import CausalVAE
from .factors import fit_factor_logits
from .family import DEFAULT_FAMILY, ImageModelFamily, get_family
from .networks import ArchConfig, CVAENet, FactorLayout, onehot

__all__ = [
    "ArchConfig",
    "CVAENet",
    "CausalVAE",
    "Checkpoint",
    "DEFAULT_FAMILY",
    "FactorLayout",
    "ImageModelFamily",
    "export_checkpoint",
    "fit_factor_logits",
    "get_family",
    "load_checkpoint",
    "onehot",
    "save_checkpoint",
]
