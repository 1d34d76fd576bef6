"""The seed's MLP CVAE, generic over a world, with the classifier cvaeq's engine needs.

The seed (the project's starting point, reimplemented in
``benchmarks/seed_vs_ours.py`` as ``SeedCVAE``) is a conditional VAE of fully
connected layers with softplus activations and Bernoulli pixels:

    q(Z | X, y):  [H*W pixels, one-hots of y] -> hidden -> hidden -> 2 * z_dim  (loc, raw scale)
    p(X | y, Z):  [Z, one-hots of y] -> hidden -> hidden -> hidden -> H*W logits
    Z ~ N(0, I)

where ``y`` are the world's factor classes, one-hot encoded in the world's
factor order (dSprites: 3 + 6 + 40 + 32 + 32 = 113 inputs; the seed had 114,
one more for the constant colour, which is a bias and changes nothing).

The seed had no q(factors | X). cvaeq's engine needs one as the proposal for
abduction from an image alone (``P(X | do(...), X=img)`` with no factor
known), so this module adds the minimum: a classifier
``H*W -> hidden -> per-factor logits`` (softplus), trained by the
classification log-likelihood weighted by ``aux_weight``, as the causal VAE
trains its own. It is not part of the seed, and it does not touch the CVAE's
networks: the image model is the seed's.

>>> import torch
>>> from cvaeq.world import Factor, World
>>> import numpy as np
>>> w = World("toy", (Factor("a", labels=("p", "q")), Factor("b", values=[0.0, 1.0, 2.0])),
...           image_shape=(4, 5), render=lambda c: np.zeros((len(c), 4, 5), np.uint8))
>>> m = SeedMLP(w.names, tuple(w.sizes.values()), w.image_shape, z_dim=3, hidden=8)
>>> x = torch.zeros(2, 4, 5); y = torch.tensor([[0, 2], [1, 0]])
>>> m.pixel_logits(y, torch.zeros(2, 3)).shape, {f: v.shape[-1] for f, v in m.factor_logits(x).items()}
(torch.Size([2, 4, 5]), {'a': 2, 'b': 3})
>>> loss, parts = m.loss(x, y)
>>> sorted(parts)
['aux_nll', 'elbo_nats']
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from torch import nn
from torch.nn import functional as F

__all__ = ["SeedMLP", "DEFAULT_HIDDEN", "DEFAULT_AUX_WEIGHT", "SCALE_FLOOR"]

#: Width of every hidden layer (the seed's).
DEFAULT_HIDDEN = 1000
#: Weight of the classification log-likelihood relative to the image ELBO (as the causal VAE's).
DEFAULT_AUX_WEIGHT = 10.0
#: Added to softplus of the encoder's raw scale (the seed's), so q(Z | X, y) never collapses to a point.
SCALE_FLOOR = 1e-4


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with softplus between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.Softplus())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class SeedMLP(nn.Module):
    """The seed's MLP CVAE over a world's factors, plus a q(factors | X) classifier.

    Implements the image-model protocol (:mod:`cvaeq.image_model`:
    ``latent_dim``, ``pixel_logits``, ``decode_probs``, ``factor_logits``,
    ``z_posterior``; not the optional split encoder) and the training one
    (``loss``, ``forward``).

    :param names: the world's factor names, in its order (the columns of ``classes``).
    :param sizes: the number of classes of each factor, same order.
    :param image_shape: ``(H, W)`` of the world's images.
    :param z_dim: dimension of Z.
    :param hidden: width of every hidden layer.
    :param aux_weight: weight of the classifier's log-likelihood in the loss.
    """

    #: The registered family name that checkpoints record (``save_checkpoint`` reads it).
    family = "seed_mlp"

    def __init__(
        self,
        names: Sequence[str],
        sizes: Sequence[int],
        image_shape: tuple[int, int],
        *,
        z_dim: int,
        hidden: int = DEFAULT_HIDDEN,
        aux_weight: float = DEFAULT_AUX_WEIGHT,
    ) -> None:
        super().__init__()
        self.names = tuple(names)
        self.sizes = tuple(int(s) for s in sizes)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.latent_dim = int(z_dim)
        self.hidden = int(hidden)
        self.aux_weight = float(aux_weight)
        pixels, cond = self.image_shape[0] * self.image_shape[1], sum(self.sizes)
        self.enc = _mlp([pixels + cond, hidden, hidden, 2 * z_dim])
        self.dec = _mlp([z_dim + cond, hidden, hidden, hidden, pixels])
        self.classifier = _mlp([pixels, hidden, cond])
        offsets = torch.tensor([0, *self.sizes[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self._elbo = Trace_ELBO()
        self._parts: dict[str, float] = {}
        self._flat: torch.Tensor | None = None

    # -- the engine's protocol ------------------------------------------------

    def onehot(self, classes: torch.Tensor) -> torch.Tensor:
        """``(S, sum of sizes)`` float one-hots of ``(S, F)`` factor classes."""
        classes = classes.long()
        out = torch.zeros(classes.shape[0], sum(self.sizes), device=classes.device)
        return out.scatter_(1, classes + self.offsets.to(classes.device), 1.0)

    def pixel_logits(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``[S, H, W]`` of p(X | factors, Z)."""
        w = self.dec[0].weight
        out = self.dec(torch.cat([z.to(w), self.onehot(classes).to(w)], 1))
        return out.reshape(-1, *self.image_shape)

    def decode_probs(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities ``[S, H, W]``: ``sigmoid(pixel_logits)``."""
        return torch.sigmoid(self.pixel_logits(classes, z))

    def _factor_logits_flat(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.reshape(x.shape[0], -1).to(self.classifier[0].weight))

    def _split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, flat.split(self.sizes, dim=-1)))

    def factor_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X): ``{factor: logits [S, size]}`` (the added classifier)."""
        return self._split(self._factor_logits_flat(x))

    def z_posterior(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(Z | X, factors): ``(loc, scale)``, each ``[S, latent_dim]``."""
        w = self.enc[0].weight
        out = self.enc(torch.cat([x.reshape(x.shape[0], -1).to(w), self.onehot(classes).to(w)], 1))
        loc, raw = out.chunk(2, 1)
        return loc, F.softplus(raw) + SCALE_FLOOR

    # -- training ---------------------------------------------------------------

    def model(self, x: torch.Tensor, classes: torch.Tensor) -> None:
        """The seed's p(Z) p(X | factors, Z) as a Pyro model."""
        s = x.shape[0]
        with pyro.plate("images", s):
            z = pyro.sample("Z", dist.Normal(x.new_zeros(s, self.latent_dim), 1.0).to_event(1))
            logits = self.pixel_logits(classes, z).reshape(s, -1)
            pyro.sample("X", dist.Bernoulli(logits=logits, validate_args=False).to_event(1), obs=x.reshape(s, -1))

    def guide(self, x: torch.Tensor, classes: torch.Tensor) -> None:
        """The seed's q(Z | X, factors)."""
        loc, scale = self.z_posterior(x, classes)
        with pyro.plate("images", x.shape[0]):
            pyro.sample("Z", dist.Normal(loc, scale).to_event(1))

    def loss(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean loss per image, differentiable, and its parts.

        The loss is the negative ELBO of log p(X | factors) (Pyro's
        ``Trace_ELBO``, one Z sample, as the seed) plus ``aux_weight`` times
        the classifier's negative log-likelihood of the true classes. Parts:
        ``elbo_nats`` (-ELBO, nats per image) and ``aux_nll`` (summed over
        factors, per image, unweighted).
        """
        x = x.float()
        s = x.shape[0]
        with pyro.validation_enabled(False):
            elbo = self._elbo.differentiable_loss(self.model, self.guide, x, classes) / s
        flat = self._factor_logits_flat(x)
        classes = classes.long()
        aux = (
            sum(
                F.cross_entropy(logits, classes[:, i], reduction="sum")
                for i, logits in enumerate(flat.split(self.sizes, dim=-1))
            )
            / s
        )
        self._flat = flat.detach()
        self._parts = {"elbo_nats": float(elbo.detach()), "aux_nll": float(aux.detach())}
        return elbo + self.aux_weight * aux, self._parts

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The training loss alone (so DistributedDataParallel can wrap the model);
        its parts are left in ``self._parts``."""
        return self.loss(x, classes)[0]

    def last_predictions(self) -> dict[str, torch.Tensor]:
        """Argmax classes of q(factors | X) from the last :meth:`loss` call."""
        if self._flat is None:
            raise RuntimeError("last_predictions() needs a loss() call first")
        return {f: v.argmax(-1) for f, v in self._split(self._flat).items()}
