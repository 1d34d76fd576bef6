"""The causal VAE as a Pyro model and guide.

Model (the SCM's image mechanism, plus the auxiliary classifier):

    Z ~ N(0, I)                                       latent, story.latent_dim
    X ~ Bernoulli(logits = decoder(factors, Z))       the world's H x W pixels
                                                      (WindowBernoulli for the window decoder)
    factor ~ q(factors | X)   observed, log-likelihood scaled by ``aux_weight``

In an 8-bit world (``world.pixel == "8bit"``, e.g. the colour pendulum) X is
instead the world's C x H x W levels 0..255, each pixel and channel a
discretised logistic (:class:`LevelPixels`, :mod:`cvaeq.levels`) whose loc and
log_scale the decoder gives; the images enter the networks as levels / 255.

Guide: ``Z ~ N(loc, scale)`` from q(Z | X, factors). The factors are observed
in training (supervised), so the ELBO is that of log p(X | factors) plus the
weighted classification log-likelihood of q(factors | X) — the classifier
enters the model as an observed site, as in Pyro's semi-supervised VAE
(Kingma et al. 2014), because it is the abduction proposal the engine uses
when only the image is observed. The factor mechanisms p(factor | parents)
are independent of the networks and fitted separately
(:mod:`cvaeq.model.factors`).

Every factor is scored against its exact class by default
(``orientation_loss="exact"``): the cross-entropy's optimum is the posterior
p(factor | X), which splits its mass where classes render identical images
and concentrates it where rasterisation tells them apart (in dSprites, a
square turned by 90 degrees lands between orientation grid values, and its
pixels usually differ from the unturned square's). That is what abduction
needs of a proposal: counterfactuals of a square under ``do(shape=heart)``
depend on which of its equivalent orientations it had. ``"symmetric"``
scores each factor the world lists in ``world.equivalent`` (dSprites:
orientation given the shape) as ``log sum_{j ~ k} q(j | X)`` over the classes
``j`` equivalent to the true ``k``, leaving the split within the set free.

>>> import torch
>>> from cvaeq.model.networks import ArchConfig
>>> vae = CausalVAE(ArchConfig(latent_dim=2))
>>> x = torch.zeros(3, 64, 64); y = torch.zeros(3, 5, dtype=torch.long)
>>> loss, parts = vae.loss(x, y)
>>> sorted(parts)
['aux_nll', 'elbo_nats']
"""

from __future__ import annotations

from typing import cast

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import Trace_ELBO
from torch.nn import functional as F

from .networks import ArchConfig, CVAENet, FullImageNet, WindowNet

__all__ = [
    "CausalVAE",
    "WindowCausalVAE",
    "FullImageCausalVAE",
    "WindowBernoulli",
    "LevelPixels",
    "level_log_prob",
    "classification_loglik",
    "DEFAULT_AUX_WEIGHT",
    "ORIENTATION_LOSSES",
]

#: Weight of the classification log-likelihood relative to the image ELBO.
DEFAULT_AUX_WEIGHT = 10.0
#: How q(factors | X) is scored: against the exact class, or modulo the world's equivalent classes.
ORIENTATION_LOSSES = ("exact", "symmetric")


def classification_loglik(
    logits: dict[str, torch.Tensor],
    classes: torch.Tensor,
    equivalent: dict[str, tuple[int, torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """``{factor: (S,)}`` log q(true class | X); ``logits`` in the classes' column order.

    With ``equivalent``, ``{factor: (column of the given factor, bool table
    [given size, size, size])}`` (a world's ``equivalent``, e.g. dSprites'
    orientation given the shape), those factors are scored modulo their
    table; the others, and all without it, against the exact class.
    """
    out = {}
    for i, (f, lg) in enumerate(logits.items()):
        logp = torch.log_softmax(lg, dim=-1)
        if equivalent is not None and f in equivalent:
            given, table = equivalent[f]
            mask = table[classes[:, given], classes[:, i]]  # (S, size)
            out[f] = torch.logsumexp(logp.masked_fill(~mask, float("-inf")), dim=-1)
        else:
            out[f] = logp.gather(1, classes[:, i : i + 1]).squeeze(1)
    return out


class WindowBernoulli(dist.TorchDistribution):
    """Bernoulli pixels of an H x W image whose logits are ``window_logits``
    inside the decoder's window and ``background`` everywhere else: p(X |
    factors, Z) of the window decoder (:class:`~cvaeq.model.networks.WindowNet`).

    ``log_prob`` costs a quarter of the full image's: the pixels outside the
    window share one logit, so they enter only through their count of ones.

    :param net: the networks (for the window's placement and the full logits).
    :param window_logits: ``(S, window pixels)`` logits of the windows, block order.
    :param classes: ``(S, F)`` factor classes (the positions place the windows).
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 2)

    def __init__(self, net: WindowNet, window_logits: torch.Tensor, classes: torch.Tensor):
        self.net, self.window_logits, self.classes = net, window_logits, classes
        super().__init__(window_logits.shape[:1], torch.Size(net.image_shape), validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), (wh, ww) = self.net.image_shape, self.net.window_shape
        window = self.net.window_of(x, self.classes)
        inside = -F.binary_cross_entropy_with_logits(
            self.window_logits, self.net.to_blocks(window), reduction="none"
        ).sum(-1)
        ones_outside = x.reshape(-1, h * w).sum(-1) - window.reshape(-1, wh * ww).sum(-1)
        b = self.net.background
        return inside - ones_outside * F.softplus(-b) - (h * w - wh * ww - ones_outside) * F.softplus(b)

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            logits = self.net.place_window(
                self.net.from_blocks(self.window_logits, *self.net.window_shape), self.classes
            )
            return torch.bernoulli(torch.sigmoid(logits).expand(torch.Size(sample_shape) + logits.shape))


def level_log_prob(levels: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """The training likelihood of 8-bit pixels: :func:`cvaeq.levels.log_prob`,
    the engine's, which has finite gradients in every bin, the end bins (open
    to -/+ infinity) included. (The shipped colour model was trained, on
    2026-12-07, with end edges cut at -/+ 10^4 instead, which agrees with it
    to 4e-5 nats per pixel.)
    """
    from .. import levels as lv

    return lv.log_prob(levels, loc, log_scale)


class LevelPixels(dist.TorchDistribution):
    """8-bit pictures whose pixels and channels are independent discretised
    logistics (:mod:`cvaeq.levels`): p(X | factors, Z) of the 8-bit decoder.

    ``log_prob(levels)`` is :func:`cvaeq.levels.log_prob` summed over the
    event (every pixel and channel); the training likelihood.

    :param loc: ``(S, *event)`` locations on the [0, 1] scale.
    :param log_scale: ``(S, *event)`` log-scales, the same shape.

    >>> import torch
    >>> d = LevelPixels(torch.full((2, 3, 8), 0.5), torch.full((2, 3, 8), -4.0))
    >>> x = d.sample()
    >>> x.dtype, tuple(d.log_prob(x).shape)
    (torch.uint8, (2,))
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.integer_interval(0, 255), 1)

    def __init__(self, loc: torch.Tensor, log_scale: torch.Tensor):
        self.loc, self.log_scale = loc, log_scale
        super().__init__(loc.shape[:1], loc.shape[1:], validate_args=False)

    def log_prob(self, levels: torch.Tensor) -> torch.Tensor:
        return level_log_prob(levels, self.loc, self.log_scale).flatten(1).sum(-1)

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> torch.Tensor:
        from .. import levels as lv

        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.loc.shape
            return lv.quantise(self.loc, self.log_scale, lv.sample_noise(shape, dtype=self.loc.dtype))


class CausalVAE(CVAENet):
    """The networks plus the Pyro ``model``/``guide`` and the training loss.

    Implements the image-model protocol (:mod:`cvaeq.image_model`; ``latent_dim``, ``decode_probs``,
    ``pixel_logits``, ``factor_logits``, ``z_posterior``) through
    :class:`~cvaeq.model.networks.CVAENet`, and the training protocol
    (``loss``, ``forward``) of :mod:`cvaeq.model.family`.
    ``CausalVAE(config, world=...)`` is a :class:`WindowCausalVAE` or a
    :class:`FullImageCausalVAE` as ``config.window`` says.
    """

    def __init__(
        self, config: ArchConfig, aux_weight: float = DEFAULT_AUX_WEIGHT, orientation_loss: str = "exact", world=None
    ):
        super().__init__(config, world)
        self.aux_weight = float(aux_weight)
        if orientation_loss not in ORIENTATION_LOSSES:
            raise ValueError(f"orientation_loss must be one of {ORIENTATION_LOSSES}, got {orientation_loss!r}")
        #: ``"exact"`` or ``"symmetric"``: how the classifier is scored (module docstring).
        self.orientation_loss = orientation_loss
        #: ``{factor: column of the factor it is given}`` of the world's equivalent classes
        self._equivalent_given = {}
        for f, (given, table) in self.world.equivalent.items():
            self._equivalent_given[f] = self.world.index(given)
            self.register_buffer(f"equivalent_{f}", torch.as_tensor(table, dtype=torch.bool), persistent=False)
        self._elbo = Trace_ELBO()

    def observe(self, logits: torch.Tensor, x: torch.Tensor, classes: torch.Tensor) -> None:
        """The ``X`` site: the decoder's block-order ``logits`` scoring the images ``x``."""
        raise NotImplementedError

    def equivalent(self) -> dict[str, tuple[int, torch.Tensor]] | None:
        """The equivalence tables the classifier is scored modulo (None: ``"exact"``)."""
        if self.orientation_loss != "symmetric":
            return None
        return {f: (g, getattr(self, f"equivalent_{f}")) for f, g in self._equivalent_given.items()}

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the networks read them: ``(S, H, W)`` binary, ``(S, C, H, W)`` levels / 255."""
        if self.pixel == "binary":
            return x.reshape(-1, *self.image_shape)
        return x.reshape(-1, self.channels, *self.image_shape)

    def model(self, x: torch.Tensor, classes: torch.Tensor) -> None:
        """p(Z) p(X | factors, Z), and the weighted classifier as an observed site."""
        x = self._input(x)
        s = x.shape[0]
        with pyro.plate("images", s):
            z = pyro.sample("Z", dist.Normal(x.new_zeros(s, self.latent_dim), 1.0).to_event(1))
            if self.pixel == "binary":
                logits = self.decode_blocks(classes, z)  # pixels in block order: no reordering copy
                self.observe(logits, x, classes)
            else:  # 8-bit: the levels, in the decoder's block order
                loc, log_scale = self.level_blocks(classes, z)
                levels = torch.round(self.to_level_blocks(x) * 255.0).long()
                pyro.sample("X", LevelPixels(loc, log_scale), obs=levels)
            flat = self.factor_logits_flat(self._feats)
            ll = classification_loglik(self.layout.split(flat), classes, self.equivalent())
            pyro.factor("q_factors", self.aux_weight * cast(torch.Tensor, sum(ll.values())))
            self._aux = {f: -v.detach() for f, v in ll.items()}
            self._flat = flat.detach()

    def guide(self, x: torch.Tensor, classes: torch.Tensor) -> None:
        """q(Z | X, factors)."""
        x = self._input(x)
        self._feats = self.features(x)
        loc, scale = self.z_params(self._feats, self.onehot(classes))
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
        return {f: v.argmax(-1) for f, v in self.layout.split(self._flat).items()}


class FullImageCausalVAE(CausalVAE, FullImageNet):
    """The causal VAE on the full-image networks (``window=0``)."""

    def observe(self, logits, x, classes):
        pyro.sample("X", dist.Bernoulli(logits=logits, validate_args=False).to_event(1), obs=self.to_blocks(x))


class WindowCausalVAE(CausalVAE, WindowNet):
    """The causal VAE on the window networks (``window=1``)."""

    def observe(self, logits, x, classes):
        pyro.sample("X", WindowBernoulli(self, logits, classes), obs=x)


CausalVAE._variants = {False: FullImageCausalVAE, True: WindowCausalVAE}
