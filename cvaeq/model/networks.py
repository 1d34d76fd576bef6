"""The neural networks of the causal VAE: a shared image trunk, the factor
heads q(factors | X), the latent encoder q(Z | X, factors) and the decoder
p(X | factors, Z).

Sized for throughput on a CPU: the trunk patchifies the 64x64 image with a
stride-4 convolution (every pixel seen once, no overlap) and adds coordinate
channels (CoordConv) so position is read off directly; the decoder maps the
factor one-hots and Z through a small MLP to an 8x8 feature map, upsamples it
once with a transposed convolution and lets a 3x3 convolution emit a 4x4 pixel
block per cell (pixel shuffle). Forward cost is about 3 M multiply-adds per
image, a quarter of the seed's MLP CVAE.

>>> import torch
>>> net = CVAENet(ArchConfig(latent_dim=6))
>>> classes = torch.tensor([[0, 5, 0, 16, 16]])
>>> net.decode_logits(onehot(classes), torch.zeros(1, 6)).shape
torch.Size([1, 64, 64])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dsprites import FACTORS, SIZES
from ..errors import CheckpointError

__all__ = ["ArchConfig", "CVAENet", "onehot", "split_logits", "ONEHOT_DIM"]

#: Width of the concatenated factor one-hots: 3 + 6 + 40 + 32 + 32.
ONEHOT_DIM = sum(SIZES[f] for f in FACTORS)
_OFFSETS = torch.tensor([0] + [SIZES[f] for f in FACTORS[:-1]]).cumsum(0)


@dataclass(frozen=True)
class ArchConfig:
    """Sizes of the networks; stored in checkpoints so a model can be rebuilt.

    :param latent_dim: dimension of Z (the story's ``latent_dim``).
    :param enc_channels: channels of the three trunk convolutions.
    :param hidden: width of the trunk's feature vector and the MLP layers.
    :param dec_channels: channels of the decoder's 8x8 feature map.
    """

    latent_dim: int = 6
    enc_channels: tuple[int, int, int] = (32, 32, 64)
    hidden: int = 256
    dec_channels: int = 32

    def to_dict(self) -> dict:
        d = asdict(self)
        d["enc_channels"] = list(self.enc_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ArchConfig":
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) != names:
            raise CheckpointError(f"architecture config must have exactly the keys {sorted(names)}, got {d!r}")
        try:
            cfg = cls(
                latent_dim=int(d["latent_dim"]),
                enc_channels=tuple(int(c) for c in d["enc_channels"]),
                hidden=int(d["hidden"]),
                dec_channels=int(d["dec_channels"]),
            )
        except (TypeError, ValueError):
            raise CheckpointError(f"architecture config has non-integer sizes: {d!r}") from None
        if len(cfg.enc_channels) != 3 or min(cfg.enc_channels + (cfg.latent_dim, cfg.hidden, cfg.dec_channels)) < 1:
            raise CheckpointError(f"architecture config has invalid sizes: {d!r}")
        if cfg.dec_channels % 2:
            raise CheckpointError(f"dec_channels must be even, got {cfg.dec_channels}")
        return cfg


def onehot(classes: torch.Tensor) -> torch.Tensor:
    """``(S, 113)`` float one-hots of ``(S, 5)`` factor classes, FACTORS order."""
    classes = classes.long()
    out = torch.zeros(classes.shape[0], ONEHOT_DIM, device=classes.device)
    out.scatter_(1, classes + _OFFSETS.to(classes.device), 1.0)
    return out


def split_logits(flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split ``(S, 113)`` concatenated logits into ``{factor: (S, size)}``."""
    return dict(zip(FACTORS, flat.split([SIZES[f] for f in FACTORS], dim=-1)))


def _coords(n: int) -> torch.Tensor:
    c = torch.linspace(-1.0, 1.0, n)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx, yy])


class CVAENet(nn.Module):
    """All networks of the causal VAE, with the engine's protocol methods.

    ``latent_dim``; ``decode_logits``/``decode_probs`` (p(X | factors, Z));
    ``factor_logits`` (q(factors | X)); ``z_posterior`` (q(Z | X, factors)).
    Images are ``(S, 64, 64)`` (or ``(S, 1, 64, 64)``) floats in [0, 1].
    """

    def __init__(self, config: ArchConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        c1, c2, c3 = config.enc_channels
        h, dc, zd = config.hidden, config.dec_channels, config.latent_dim
        self.register_buffer("coords64", _coords(64), persistent=False)
        self.register_buffer("coords16", _coords(16), persistent=False)
        # trunk: 64x64 -> 16x16 (patchify) -> 8x8 -> 4x4 -> hidden
        self.conv1 = nn.Conv2d(3, c1, 4, stride=4)
        self.conv2 = nn.Conv2d(c1 + 2, c2, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.fc = nn.Linear(c3 * 16, h)
        # q(factors | X)
        self.factor_head = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, ONEHOT_DIM))
        # q(Z | X, factors)
        self.z_head = nn.Sequential(nn.Linear(h + ONEHOT_DIM, h), nn.SiLU(), nn.Linear(h, 2 * zd))
        # p(X | factors, Z): MLP -> 8x8 map -> 16x16 -> 4x4 pixel blocks
        self.dec_mlp = nn.Sequential(
            nn.Linear(ONEHOT_DIM + zd, h), nn.SiLU(), nn.Linear(h, dc * 64), nn.SiLU()
        )
        self.dec_up = nn.ConvTranspose2d(dc, dc // 2, 4, stride=2, padding=1)
        self.dec_out = nn.Conv2d(dc // 2 + 2, 16, 3, padding=1)

    # -- pieces -----------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, hidden)`` trunk features of images, shared by both encoders."""
        x = x.reshape(-1, 1, 64, 64)
        s = x.shape[0]
        hx = torch.cat([x, self.coords64.expand(s, -1, -1, -1)], 1)
        hx = F.silu(self.conv1(hx))
        hx = torch.cat([hx, self.coords16.expand(s, -1, -1, -1)], 1)
        hx = F.silu(self.conv2(hx))
        hx = F.silu(self.conv3(hx))
        return F.silu(self.fc(hx.flatten(1)))

    def factor_logits_flat(self, feats: torch.Tensor) -> torch.Tensor:
        """``(S, 113)`` concatenated q(factors | X) logits from trunk features."""
        return self.factor_head(feats)

    def z_params(self, feats: torch.Tensor, onehots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc, scale of q(Z | X, factors) from trunk features and one-hots."""
        out = self.z_head(torch.cat([feats, onehots], 1))
        loc, raw = out.chunk(2, dim=1)
        return loc, F.softplus(raw) + 1e-4

    def decode_logits(self, onehots: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli logits of p(X | factors, Z) from one-hots."""
        s = z.shape[0]
        hd = self.dec_mlp(torch.cat([onehots, z], 1)).view(s, self.config.dec_channels, 8, 8)
        hd = F.silu(self.dec_up(hd))
        hd = torch.cat([hd, self.coords16.expand(s, -1, -1, -1)], 1)
        return F.pixel_shuffle(self.dec_out(hd), 4).view(s, 64, 64)

    # -- the engine's protocol -------------------------------------------
    def decode_probs(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli pixel probabilities of p(X | factors, Z)."""
        return torch.sigmoid(self.decode_logits(onehot(classes), z))

    def factor_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X): ``{factor: (S, size)}`` logits, keys in FACTORS order."""
        return split_logits(self.factor_logits_flat(self.features(x)))

    def z_posterior(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and scale ``(S, latent_dim)`` of q(Z | X, factors)."""
        return self.z_params(self.features(x), onehot(classes))
