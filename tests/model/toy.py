"""A plugin's world and image-model family, as a user would write them: the
model layer must train, save and load them without knowing either."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cvaeq.errors import CvaeqError
from cvaeq.hookspecs import hookimpl
from cvaeq.world import Factor, World


def render_bars(classes: np.ndarray) -> np.ndarray:
    """32x32 images: a bar (horizontal or vertical) of a given length with its
    corner at (2 + 5 row, 2 + 5 col), inside the causal VAE's 16x16 window there."""
    out = np.zeros((len(classes), 32, 32), dtype=np.uint8)
    for n, (kind, length, row, col) in enumerate(np.asarray(classes)):
        size = 4 + 2 * int(length)
        r, c = 2 + 5 * int(row), 2 + 5 * int(col)
        if kind == 0:
            out[n, r : r + 2, c : c + size] = 1
        else:
            out[n, r : r + size, c : c + 2] = 1
    return out


BARS = World(
    name="bars",
    factors=(Factor("kind", labels=("horizontal", "vertical")), Factor("length", values=[4.0, 6.0, 8.0]),
             Factor("row", values=[0.0, 1.0, 2.0, 3.0]), Factor("col", values=[0.0, 1.0, 2.0, 3.0])),
    image_shape=(32, 32),
    render=render_bars,
    model_arch={"window_factors": ["row", "col"]},
    description="bars: a test world",
)

STORY = """
name = "bars-story"
world = "bars"
latent_dim = 2

[factors.kind]
parents = []
probs = [0.6, 0.4]

[factors.length]
parents = ["kind"]
probs = [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]

[factors.row]
parents = []
probs = [0.25, 0.25, 0.25, 0.25]

[factors.col]
parents = ["row"]
probs = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]]
"""


class MLPModel(nn.Module):
    """A small MLP CVAE implementing the family protocol (cvaeq.model.family)."""

    def __init__(self, world, latent_dim: int, hidden: int):
        super().__init__()
        self.world, self.latent_dim, self.hidden = world, latent_dim, hidden
        self.sizes = [f.size for f in world.factors]
        n_pix, n_hot = int(np.prod(world.image_shape)), sum(self.sizes)
        self.enc = nn.Linear(n_pix, hidden)
        self.heads = nn.Linear(hidden, n_hot)
        self.z_head = nn.Linear(hidden + n_hot, 2 * latent_dim)
        self.dec = nn.Linear(n_hot + latent_dim, n_pix)

    def _onehot(self, classes):
        return torch.cat([F.one_hot(classes[:, i].long(), k).float() for i, k in enumerate(self.sizes)], 1)

    def _h(self, x):
        return F.silu(self.enc(x.reshape(x.shape[0], -1).float()))

    def factor_logits(self, x):
        return dict(zip(self.world.names, self.heads(self._h(x)).split(self.sizes, -1)))

    def z_posterior(self, x, classes):
        loc, raw = self.z_head(torch.cat([self._h(x), self._onehot(classes)], 1)).chunk(2, 1)
        return loc, F.softplus(raw) + 1e-4

    def pixel_logits(self, classes, z):
        return self.dec(torch.cat([self._onehot(classes), z], 1)).view(-1, *self.world.image_shape)

    def loss(self, x, classes):
        loc, scale = self.z_posterior(x, classes)
        z = loc + scale * torch.randn_like(loc)
        rec = F.binary_cross_entropy_with_logits(self.pixel_logits(classes, z), x.reshape(-1, *self.world.image_shape),
                                                 reduction="none").sum((1, 2))
        kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * scale.log()).sum(1)
        logits = self.factor_logits(x)
        aux = sum(F.cross_entropy(logits[f], classes[:, i], reduction="none") for i, f in enumerate(self.world.names))
        elbo = (rec + kl).mean()
        return elbo + aux.mean(), {"elbo_nats": float(elbo.detach())}

    def forward(self, x, classes):
        return self.loss(x, classes)[0]


class MLPFamily:
    """The ``test_mlp`` family: one size, ``hidden``."""

    def build(self, world, latent_dim, arch):
        arch = dict(arch)
        hidden = arch.pop("hidden", 24)
        if arch or not isinstance(hidden, int) or hidden < 1:
            raise CvaeqError(f"test_mlp arch: only hidden (an integer >= 1) is known, got {sorted(arch) or hidden}")
        return MLPModel(world, latent_dim, hidden)

    def arch_of(self, model):
        return {"hidden": model.hidden}


class Plugin:
    """A third-party plugin contributing the bars world and the test_mlp family."""

    @hookimpl
    def register_worlds(self, register):
        register(BARS)

    @hookimpl
    def register_image_models(self, register):
        register("test_mlp", MLPFamily())
