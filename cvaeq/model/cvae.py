"""The causal VAE as a Pyro model and guide.

Model (the SCM's image mechanism, plus the auxiliary classifier):

    Z ~ N(0, I)                                       latent, story.latent_dim
    X ~ Bernoulli(logits = decoder(factors, Z))       64x64 pixels (WindowBernoulli
                                                      for the window decoder)
    factor ~ q(factors | X)   observed, log-likelihood scaled by ``aux_weight``

Guide: ``Z ~ N(loc, scale)`` from q(Z | X, factors). The factors are observed
in training (supervised), so the ELBO is that of log p(X | factors) plus the
weighted classification log-likelihood of q(factors | X) — the classifier
enters the model as an observed site, as in Pyro's semi-supervised VAE
(Kingma et al. 2014), because it is the abduction proposal the engine uses
when only the image is observed. The factor mechanisms p(factor | parents)
are independent of the networks and fitted separately
(:mod:`cvaeq.model.factors`).

Orientation is scored against its exact class by default
(``orientation_loss="exact"``): the cross-entropy's optimum is the posterior
p(orientation | X), which splits its mass where turns by a shape's symmetry
render identical images and concentrates it where rasterisation tells them
apart (a square turned by 90 degrees lands between grid values, and its
pixels usually differ from the unturned square's). That is what abduction
needs of a proposal: counterfactuals of a square under ``do(shape=heart)``
depend on which of its equivalent orientations it had. ``"symmetric"`` scores
``log sum_{j ~ k} q(j | X)`` over the classes ``j`` equivalent to the true
``k`` (:mod:`cvaeq.worlds.dsprites.symmetry`), leaving the split within the set free.

>>> import torch
>>> from cvaeq.model.networks import ArchConfig
>>> vae = CausalVAE(ArchConfig(latent_dim=2))
>>> x = torch.zeros(3, 64, 64); y = torch.zeros(3, 5, dtype=torch.long)
>>> loss, parts = vae.loss(x, y)
>>> sorted(parts)
['aux_nll', 'elbo_nats']
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import Trace_ELBO
from torch import nn
from torch.nn import functional as F

from ..worlds.dsprites.factors import FACTORS
from .networks import WINDOW, ArchConfig, CVAENet, onehot, split_logits
from ..worlds.dsprites.symmetry import orientation_equivalence

__all__ = ["CausalVAE", "WindowBernoulli", "classification_loglik", "DEFAULT_AUX_WEIGHT", "ORIENTATION_LOSSES"]

#: Weight of the classification log-likelihood relative to the image ELBO.
DEFAULT_AUX_WEIGHT = 10.0
#: How q(orientation | X) is scored: against the exact class, or modulo symmetry.
ORIENTATION_LOSSES = ("exact", "symmetric")

_ORI = FACTORS.index("orientation")
_SHAPE = FACTORS.index("shape")


def classification_loglik(logits: dict[str, torch.Tensor], classes: torch.Tensor,
                          equivalence: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``{factor: (S,)}`` log q(true class | X).

    With ``equivalence``, the ``(3, 40, 40)`` bool table of
    :func:`~cvaeq.worlds.dsprites.symmetry.orientation_equivalence`, orientation is
    scored modulo symmetry; without it, against the exact class.
    """
    out = {}
    for i, f in enumerate(FACTORS):
        logp = torch.log_softmax(logits[f], dim=-1)
        if f == "orientation" and equivalence is not None:
            mask = equivalence[classes[:, _SHAPE], classes[:, _ORI]]  # (S, 40)
            out[f] = torch.logsumexp(logp.masked_fill(~mask, float("-inf")), dim=-1)
        else:
            out[f] = logp.gather(1, classes[:, i : i + 1]).squeeze(1)
    return out


class WindowBernoulli(dist.TorchDistribution):
    """Bernoulli pixels of a 64x64 image whose logits are ``window_logits``
    inside a 32x32 window and ``background`` everywhere else: p(X | factors, Z)
    of the window decoder (:mod:`cvaeq.model.networks`).

    ``log_prob`` costs a quarter of the full image's: the pixels outside the
    window share one logit, so they enter only through their count of ones.

    :param net: the networks (for the window's placement and the full logits).
    :param window_logits: ``(S, 1024)`` logits of the windows, block order.
    :param classes: ``(S, 5)`` factor classes (the positions place the windows).
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 2)

    def __init__(self, net: CVAENet, window_logits: torch.Tensor, classes: torch.Tensor):
        self.net, self.window_logits, self.classes = net, window_logits, classes
        super().__init__(window_logits.shape[:1], torch.Size([64, 64]), validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        window = self.net.window_of(x, self.classes)
        inside = -F.binary_cross_entropy_with_logits(
            self.window_logits, self.net.to_blocks(window), reduction="none").sum(-1)
        ones_outside = x.reshape(-1, 64 * 64).sum(-1) - window.reshape(-1, WINDOW * WINDOW).sum(-1)
        b = self.net.background
        return inside - ones_outside * F.softplus(-b) - (64 * 64 - WINDOW * WINDOW - ones_outside) * F.softplus(b)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            logits = self.net.place_window(self.net.from_blocks(self.window_logits), self.classes)
            return torch.bernoulli(torch.sigmoid(logits).expand(sample_shape + logits.shape))


class CausalVAE(CVAENet):
    """The networks plus the Pyro ``model``/``guide`` and the training loss.

    Implements the engine's protocol (``latent_dim``, ``decode_probs``,
    ``pixel_logits``, ``factor_logits``, ``z_posterior``) through
    :class:`~cvaeq.model.networks.CVAENet`.
    """

    def __init__(self, config: ArchConfig, aux_weight: float = DEFAULT_AUX_WEIGHT,
                 orientation_loss: str = "exact", world=None):
        super().__init__(config, world)
        self.aux_weight = float(aux_weight)
        if orientation_loss not in ORIENTATION_LOSSES:
            raise ValueError(f"orientation_loss must be one of {ORIENTATION_LOSSES}, got {orientation_loss!r}")
        #: ``"exact"`` or ``"symmetric"``: how the classifier's orientation is scored (module docstring).
        self.orientation_loss = orientation_loss
        self.register_buffer("equivalence", torch.from_numpy(orientation_equivalence()), persistent=False)
        self._elbo = Trace_ELBO()

    def model(self, x: torch.Tensor, classes: torch.Tensor) -> None:
        """p(Z) p(X | factors, Z), and the weighted classifier as an observed site."""
        x = x.reshape(-1, 64, 64)
        s = x.shape[0]
        with pyro.plate("images", s):
            z = pyro.sample("Z", dist.Normal(x.new_zeros(s, self.latent_dim), 1.0).to_event(1))
            logits = self.decode_blocks(classes, z)  # pixels in block order: no reordering copy
            if self.config.window:
                pyro.sample("X", WindowBernoulli(self, logits, classes), obs=x)
            else:
                pyro.sample("X", dist.Bernoulli(logits=logits, validate_args=False).to_event(1),
                            obs=self.to_blocks(x))
            flat = self.factor_logits_flat(self._feats)
            equiv = self.equivalence if self.orientation_loss == "symmetric" else None
            ll = classification_loglik(split_logits(flat), classes, equiv)
            pyro.factor("q_factors", self.aux_weight * sum(ll.values()))
            self._aux = {f: -v.detach() for f, v in ll.items()}
            self._flat = flat.detach()

    def guide(self, x: torch.Tensor, classes: torch.Tensor) -> None:
        """q(Z | X, factors)."""
        x = x.reshape(-1, 64, 64)
        self._feats = self.features(x)
        loc, scale = self.z_params(self._feats, onehot(classes))
        with pyro.plate("images", x.shape[0]):
            pyro.sample("Z", dist.Normal(loc, scale).to_event(1))

    def loss(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean negative ELBO per image (Trace_ELBO, one particle), differentiable,
        and its parts: ``elbo_nats`` (-ELBO of log p(X | factors), nats/image)
        and ``aux_nll`` (summed classification NLL per image, unweighted)."""
        with pyro.validation_enabled(False):
            total = self._elbo.differentiable_loss(self.model, self.guide, x, classes)
        s = x.shape[0]
        aux = sum(v.sum() for v in self._aux.values()) / s
        elbo = total.detach() / s - self.aux_weight * aux
        self._parts = {"elbo_nats": float(elbo), "aux_nll": float(aux)}
        return total / s, self._parts

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The training loss (so DistributedDataParallel can wrap the model);
        its parts are left in ``self._parts``."""
        return self.loss(x, classes)[0]

    def last_predictions(self) -> dict[str, torch.Tensor]:
        """Argmax classes of q(factors | X) from the last :meth:`loss` call."""
        return {f: v.argmax(-1) for f, v in split_logits(self._flat).items()}
