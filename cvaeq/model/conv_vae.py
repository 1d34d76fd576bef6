"""A convolutional causal VAE for small 8-bit pictures with categorical and continuous factors.

The causal VAE of :mod:`cvaeq.model.cvae` is built for 64×64 worlds of
rendered pictures (sides multiples of 16, every factor on a grid, one-hots
in and softmaxes out). Real labelled pictures such as Morpho-MNIST's 28×28
grey digits have neither: sides of 28, and factors that take any number in
an interval (``thickness``, ``intensity``). This family (``conv_causal_vae``,
:mod:`cvaeq.model.conv_family`) models them:

    Z ~ N(0, I)                                        latent, story.latent_dim
    X ~ LevelPixels(decoder(factors, Z))               C x H x W levels 0..255,
                                                       each a discretised logistic (cvaeq.levels)
    factor ~ q(factor | X)   observed, log-likelihood scaled by ``aux_weight``:
                             a softmax for a categorical factor, a Normal in
                             the factor's own units for a continuous one

Guide: ``Z ~ N(loc, scale)`` from q(Z | X, factors). As in the causal VAE the
factors are observed in training (supervised): the loss is the negative ELBO
of log p(X | factors) plus the weighted log-likelihood of the true factors
under the encoder heads, which are the engine's proposals when only the
picture is observed.

**The factors a model receives** (:class:`FactorCoder`): ``[S, F]`` in the
world's factor order, int64 classes, or float64 where the world has a
continuous factor (its categorical columns then hold exact integer
classes). The decoder and q(Z | X, factors) read them as one vector: a
one-hot per discrete factor and, per continuous factor, its standardised
value ``(v - mean) / sd``, with the mean and sd of the training data
(buffers, so checkpoints carry them).

**Networks** (sizes in :class:`ConvArch`; the pictures' sides must be
multiples of 4): the encoder's trunk is two stride-2 4×4 convolutions
(``channels``, ``2 channels``) and a dense layer to ``hidden`` features;
heads on those features give q(factors | X) and, with the factor vector,
q(Z | X, factors). The decoder maps ``[Z, factor vector]`` through two dense
layers to a ``2 channels`` × H/4 × W/4 map, then two stride-2 transposed
convolutions to each pixel's discretised logistic ``(loc, log_scale)``. The
factor vector also enters at the middle resolution as a per-channel bias
(a FiLM-style shift), so the continuous factors reach the pixels by a short
path and Z is not needed to carry them.

>>> import torch
>>> from cvaeq.world import get_world
>>> world = get_world("morphomnist")
>>> vae = ConvCausalVAE(world, ConvArch(latent_dim=4, channels=8, hidden=32))
>>> factors = torch.tensor([[7, 2.5, 180.0], [1, 4.0, 250.0]], dtype=torch.float64)
>>> loc, log_scale = vae.pixel_levels(factors, torch.zeros(2, 4))
>>> tuple(loc.shape), tuple(log_scale.shape)
((2, 28, 28), (2, 28, 28))
>>> x = torch.zeros(2, 28, 28)
>>> sorted(vae.factor_logits(x)), sorted(vae.factor_normals(x))
(['digit'], ['intensity', 'thickness'])
>>> loss, parts = vae.loss(x, factors)
>>> sorted(parts)
['aux_nll', 'elbo_nats']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO
from torch import nn

from ..errors import CvaeqError
from .cvae import LevelPixels
from .family import arch_and_aux_weight

__all__ = ["ConvArch", "ConvCausalVAE", "FactorCoder", "DEFAULT_AUX_WEIGHT"]

#: Weight of the encoder heads' log-likelihood of the true factors relative to the image ELBO.
DEFAULT_AUX_WEIGHT = 10.0
#: Bounds of the continuous heads' log-scale, in standardised units (sd from e^-6 to e^2 training sds).
HEAD_LOG_SCALE = (-6.0, 2.0)


@dataclass(frozen=True)
class ConvArch:
    """Sizes of the networks (``cvaeq train --arch``), recorded in checkpoints.

    :param latent_dim: dimension of Z (the story's ``latent_dim``).
    :param channels: channels of the first convolution (the second has twice as many).
    :param hidden: width of the dense layers (trunk features, heads, decoder).
    """

    latent_dim: int = 16
    channels: int = 32
    hidden: int = 256

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(ConvArch))


class FactorCoder(nn.Module):
    """The factors ``[S, F]`` as the networks read them: a one-hot per discrete
    factor, the standardised value of each continuous one, in the world's order.

    The continuous factors' means and sds are buffers (saved with the model):
    the middle and a quarter of the factor's interval until :meth:`fit` sets
    them from training data.

    >>> from cvaeq.world import get_world
    >>> coder = FactorCoder(get_world("morphomnist"))
    >>> coder.dim, coder.discrete, coder.continuous
    (12, ('digit',), ('thickness', 'intensity'))
    >>> coder.fit(np.array([[0, 1.0, 100.0], [3, 3.0, 200.0]]))
    >>> coder(torch.tensor([[3, 3.0, 150.0]], dtype=torch.float64))[0, 9:].tolist()
    [0.0, 1.0, 0.0]
    """

    mean: torch.Tensor
    sd: torch.Tensor
    offsets: torch.Tensor

    def __init__(self, world) -> None:
        super().__init__()
        self.world = world
        #: names of the discrete and continuous factors, and their columns
        self.discrete = tuple(world.discrete)
        self.continuous = tuple(world.continuous)
        self.discrete_columns = [world.index(f) for f in self.discrete]
        self.continuous_columns = [world.index(f) for f in self.continuous]
        self.sizes = tuple(world.sizes[f] for f in self.discrete)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]) if self.sizes else np.zeros(0)
        self.register_buffer("offsets", torch.as_tensor(offsets.astype(np.int64)), persistent=False)
        lows = [world.factor(f).low for f in self.continuous]
        highs = [world.factor(f).high for f in self.continuous]
        self.register_buffer("mean", torch.tensor([(a + b) / 2 for a, b in zip(lows, highs)], dtype=torch.float64))
        self.register_buffer("sd", torch.tensor([(b - a) / 4 for a, b in zip(lows, highs)], dtype=torch.float64))
        #: width of the vector: the one-hots, then one number per continuous factor
        self.dim = int(sum(self.sizes)) + len(self.continuous)

    def fit(self, factors: np.ndarray) -> None:
        """Set the continuous factors' means and sds from ``(N, F)`` training values."""
        values = np.asarray(factors, dtype=np.float64)[:, self.continuous_columns]
        if len(values) < 2:
            raise CvaeqError("standardising the continuous factors needs at least two training rows")
        sd = values.std(0)
        self.mean.copy_(torch.as_tensor(values.mean(0)))
        self.sd.copy_(torch.as_tensor(np.where(sd > 0, sd, 1.0)))

    def forward(self, factors: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(S, dim)`` vectors of ``(S, F)`` factors (int64 classes or float64 values)."""
        s = factors.shape[0]
        parts = []
        if self.discrete:
            classes = factors[:, self.discrete_columns].long()
            onehot = torch.zeros(s, int(sum(self.sizes)), dtype=dtype, device=factors.device)
            onehot.scatter_(1, classes + self.offsets, 1.0)
            parts.append(onehot)
        if self.continuous:
            values = factors[:, self.continuous_columns].to(torch.float64)
            parts.append(((values - self.mean) / self.sd).to(dtype))
        return torch.cat(parts, 1)

    def standardise(self, factors: torch.Tensor) -> torch.Tensor:
        """``(S, n continuous)`` float64 standardised values of the continuous columns."""
        return (factors[:, self.continuous_columns].to(torch.float64) - self.mean) / self.sd


class ConvCausalVAE(nn.Module):
    """The networks plus the Pyro ``model``/``guide`` and the training loss.

    Implements the image-model protocol (:mod:`cvaeq.image_model`):
    ``latent_dim``, ``pixel = "8bit"``, ``pixel_levels``, ``factor_logits``
    (categorical factors), ``factor_normals`` (continuous factors),
    ``z_posterior``, and the split encoder (``features``,
    ``factor_logits_of``, ``factor_normals_of``, ``z_posterior_of``); and the
    training protocol (``loss``, ``forward``) of :mod:`cvaeq.model.family`.
    Pictures are ``(S, H, W)`` or ``(S, C, H, W)`` floats, levels / 255.

    :param world: the :class:`~cvaeq.world.World` (8-bit pictures, sides multiples of 4).
    :param arch: the sizes.
    :param aux_weight: weight of the encoder heads' log-likelihood in the loss.
    """

    #: the pixel kind the decoder models (:mod:`cvaeq.levels`)
    pixel = "8bit"
    #: the clamp of the decoder's log-scale on the [0, 1] scale, as the causal VAE's
    LOG_SCALE_RANGE = (-8.0, 0.0)

    def __init__(self, world, arch: ConvArch, aux_weight: float = DEFAULT_AUX_WEIGHT) -> None:
        super().__init__()
        if world.pixel != "8bit":
            raise CvaeqError(f"conv_causal_vae decodes 8bit pictures; world {world.name!r} has {world.pixel} pictures")
        self.world, self.arch = world, arch
        self.latent_dim = arch.latent_dim
        self.aux_weight = float(aux_weight)
        self.channels = world.channels
        h, w = self.image_shape = tuple(world.image_shape[-2:])
        if h % 4 or w % 4:
            raise CvaeqError(
                f"conv_causal_vae needs picture sides that are multiples of 4; world {world.name!r} has {h}x{w}"
            )
        self.coder = FactorCoder(world)
        self.n_logits = int(sum(self.coder.sizes))
        self.n_normals = len(self.coder.continuous)
        c, k, hid, zd = self.channels, arch.channels, arch.hidden, arch.latent_dim
        self.small = (h // 4, w // 4)
        cells = (h // 4) * (w // 4) * 2 * k
        # the trunk: x -> features (shared by both heads)
        self.conv1 = nn.Conv2d(c, k, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(k, 2 * k, 4, stride=2, padding=1)
        self.trunk_fc = nn.Linear(cells, hid)
        # q(factors | X): logits of the discrete factors, then (loc, log_scale) of each continuous one
        self.factor_head = nn.Sequential(
            nn.Linear(hid, hid), nn.SiLU(), nn.Linear(hid, self.n_logits + 2 * self.n_normals)
        )
        # q(Z | X, factors)
        self.z_head = nn.Sequential(nn.Linear(hid + self.coder.dim, hid), nn.SiLU(), nn.Linear(hid, 2 * zd))
        # p(X | factors, Z)
        self.dec_fc = nn.Sequential(nn.Linear(zd + self.coder.dim, hid), nn.SiLU(), nn.Linear(hid, cells), nn.SiLU())
        self.deconv1 = nn.ConvTranspose2d(2 * k, k, 4, stride=2, padding=1)
        self.film = nn.Linear(self.coder.dim, k)
        self.deconv2 = nn.ConvTranspose2d(k, 2 * c, 4, stride=2, padding=1)
        self._elbo = Trace_ELBO()

    def standardise_factors(self, factors: np.ndarray) -> None:
        """Take the continuous factors' means and sds from the training rows ``(N, F)``
        (:meth:`FactorCoder.fit`; training calls it once, before a new run's first step)."""
        self.coder.fit(factors)

    # -- pictures ----------------------------------------------------------
    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Pictures as the trunk reads them: ``(S, C, H, W)`` float32."""
        return x.reshape(-1, self.channels, *self.image_shape).to(torch.float32)

    def _out_shape(self, t: torch.Tensor) -> torch.Tensor:
        """``(S, C, H, W)`` as the world's ``image_shape`` (``(S, H, W)`` for a world of ``(H, W)``)."""
        return t.reshape(t.shape[0], *self.world.image_shape)

    # -- the encoder -------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, hidden)`` trunk features of pictures ``(S, H, W)`` or ``(S, C, H, W)`` (levels / 255)."""
        if x.dim() > 1 and x.shape[0] > 1 and x.stride(0) == 0:  # one picture for every row
            return self.features(x[:1]).expand(x.shape[0], -1)
        t = F.silu(self.conv1(self._input(x) * 2.0 - 1.0))
        t = F.silu(self.conv2(t))
        return F.silu(self.trunk_fc(t.flatten(1)))

    def _heads(self, feats: torch.Tensor) -> torch.Tensor:
        return self.factor_head(feats)

    def factor_logits_of(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X) of the categorical factors from :meth:`features`: ``{factor: (S, size)}``."""
        return self._split_logits(self._heads(feats))

    def factor_normals_of(self, feats: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """q(factor | X) of the continuous factors from :meth:`features`:
        ``{factor: (loc (S,), log_scale (S,))}``, a Normal in the factor's units."""
        return self._split_normals(self._heads(feats))

    def _split_logits(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.coder.discrete, out[:, : self.n_logits].split(list(self.coder.sizes), dim=1)))

    def _standard_normals(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, log_scale)``, each ``(S, n continuous)``, in standardised units."""
        raw = out[:, self.n_logits :].reshape(-1, self.n_normals, 2)
        return raw[..., 0], raw[..., 1].clamp(*HEAD_LOG_SCALE)

    def _split_normals(self, out: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        loc, log_scale = self._standard_normals(out)
        mean, sd = self.coder.mean.to(loc.dtype), self.coder.sd.to(loc.dtype)
        loc, log_scale = loc * sd + mean, log_scale + torch.log(sd)
        return {f: (loc[:, i], log_scale[:, i]) for i, f in enumerate(self.coder.continuous)}

    def factor_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X) of the categorical factors: ``{factor: (S, size)}`` logits."""
        return self.factor_logits_of(self.features(x))

    def factor_normals(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """q(factor | X) of the continuous factors: ``{factor: (loc (S,), log_scale (S,))}`` in its units."""
        return self.factor_normals_of(self.features(x))

    def z_posterior_of(self, feats: torch.Tensor, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(Z | X, factors) from :meth:`features` and ``(S, F)`` factors: loc and scale ``(S, latent_dim)``."""
        out = self.z_head(torch.cat([feats, self.coder(factors, feats.dtype)], 1))
        loc, raw = out.chunk(2, dim=1)
        return loc, F.softplus(raw) + 1e-4

    def z_posterior(self, x: torch.Tensor, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(Z | X, factors): loc and scale ``(S, latent_dim)``."""
        return self.z_posterior_of(self.features(x), factors)

    # -- the decoder -------------------------------------------------------
    def decode(self, factors: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and log_scale ``(S, C, H, W)`` of p(X | factors, Z) (log_scale clamped)."""
        cond = self.coder(factors, z.dtype)
        k = self.arch.channels
        t = self.dec_fc(torch.cat([z, cond], 1)).view(-1, 2 * k, *self.small)
        t = F.silu(self.deconv1(t) + self.film(cond)[:, :, None, None])
        out = self.deconv2(t).view(-1, 2, self.channels, *self.image_shape)
        return out[:, 0], out[:, 1].clamp(*self.LOG_SCALE_RANGE)

    def pixel_levels(self, factors: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and log_scale, each ``(S, *image_shape)``: every pixel's discretised
        logistic (:mod:`cvaeq.levels`, loc on the [0, 1] scale)."""
        loc, log_scale = self.decode(factors, z)
        return self._out_shape(loc), self._out_shape(log_scale)

    # -- training (Pyro) ---------------------------------------------------
    def supervised_loglik(self, feats: torch.Tensor, factors: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{factor: (S,)}`` log q(true factor | X): a categorical factor's log-softmax
        at its class, a continuous factor's Normal log-density in standardised units
        (its density in the factor's units up to the constant ``-log sd``)."""
        out = self._heads(feats)
        ll = {}
        for f, col, logits in zip(self.coder.discrete, self.coder.discrete_columns, self._split_logits(out).values()):
            ll[f] = torch.log_softmax(logits, -1).gather(1, factors[:, col : col + 1].long()).squeeze(1)
        if self.n_normals:
            loc, log_scale = self._standard_normals(out)
            target = self.coder.standardise(factors).to(loc.dtype)
            logp = -0.5 * ((target - loc) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * math.log(2 * math.pi)
            ll.update({f: logp[:, i] for i, f in enumerate(self.coder.continuous)})
        return ll

    def model(self, x: torch.Tensor, factors: torch.Tensor) -> None:
        """p(Z) p(X | factors, Z), and the weighted encoder heads as an observed site."""
        x = self._input(x)
        s = x.shape[0]
        with pyro.plate("images", s):
            z = pyro.sample("Z", dist.Normal(x.new_zeros(s, self.latent_dim), 1.0).to_event(1))
            loc, log_scale = self.decode(factors, z)
            levels = torch.round(x * 255.0).long()
            pyro.sample("X", LevelPixels(loc, log_scale), obs=levels)
            ll = self.supervised_loglik(self._feats, factors)
            pyro.factor("q_factors", self.aux_weight * sum(ll.values()))  # type: ignore[arg-type]
            self._aux = {f: -v.detach() for f, v in ll.items()}

    def guide(self, x: torch.Tensor, factors: torch.Tensor) -> None:
        """q(Z | X, factors)."""
        self._feats = self.features(x)
        loc, scale = self.z_posterior_of(self._feats, factors)
        with pyro.plate("images", loc.shape[0]):
            pyro.sample("Z", dist.Normal(loc, scale).to_event(1))

    def loss(self, x: torch.Tensor, factors: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean negative ELBO per picture (Trace_ELBO, one particle), differentiable,
        and its parts: ``elbo_nats`` (-ELBO of log p(X | factors), nats/picture) and
        ``aux_nll`` (the heads' summed negative log-likelihood per picture, unweighted)."""
        with pyro.validation_enabled(False):
            total = self._elbo.differentiable_loss(self.model, self.guide, x, factors)
        s = x.shape[0]
        aux = sum(v.sum() for v in self._aux.values()) / s
        elbo = total.detach() / s - self.aux_weight * aux
        self._parts = {"elbo_nats": float(elbo), "aux_nll": float(aux)}
        return total / s, self._parts

    def forward(self, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """The training loss (so DistributedDataParallel can wrap the model)."""
        return self.loss(x, factors)[0]

    def arch_dict(self) -> dict[str, Any]:
        """The sizes and the training option, as a checkpoint records them."""
        return {**self.arch.to_dict(), "aux_weight": self.aux_weight}


def arch_from(world, latent_dim: int, arch: Mapping[str, Any]) -> tuple[ConvArch, float]:
    """A :class:`ConvArch` and ``aux_weight`` from ``arch`` (defaults for missing keys);
    bad keys or values are a one-line CvaeqError."""
    allowed = [k for k in ConvArch.names() if k != "latent_dim"] + ["aux_weight"]
    arch, aux = arch_and_aux_weight("conv_causal_vae", arch, allowed, latent_dim, DEFAULT_AUX_WEIGHT)
    for key, value in arch.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
            raise CvaeqError(f"conv_causal_vae arch: {key} must be an integer from 1 to 4096, got {value!r}")
    if not isinstance(latent_dim, int) or not 1 <= latent_dim <= 1024:
        raise CvaeqError(f"conv_causal_vae: latent_dim must be an integer from 1 to 1024, got {latent_dim!r}")
    return ConvArch(latent_dim=latent_dim, **arch), float(aux)
