"""The learned half of the SCM: the causal VAE, its training and checkpoints.

>>> from cvaeq.model import load_checkpoint, CausalVAE, ArchConfig
"""

from .checkpoint import Checkpoint, export_checkpoint, load_checkpoint, save_checkpoint
from .cvae import CausalVAE
from .factors import fit_factor_logits
from .networks import ArchConfig, CVAENet, onehot
from ..worlds.dsprites.symmetry import orientation_equivalence, same_orientation

__all__ = [
    "ArchConfig",
    "CVAENet",
    "CausalVAE",
    "Checkpoint",
    "export_checkpoint",
    "fit_factor_logits",
    "load_checkpoint",
    "onehot",
    "orientation_equivalence",
    "same_orientation",
    "save_checkpoint",
]
