"""The neural networks of the causal VAE: a shared image trunk, the factor
heads q(factors | X), the latent encoder q(Z | X, factors) and the decoder
p(X | factors, Z).

Built from matrix products only, for throughput on a CPU (convolutions with
few channels are slow there, especially backwards):

* trunk: the 64x64 image is cut into 4x4 patches (256 of them), each mapped
  to ``c1`` features plus a learned per-patch position embedding (what
  CoordConv's coordinate channels give a linear layer, generalised); 2x2
  patches are merged into ``c2`` features on an 8x8 grid; the lot is
  flattened into a ``hidden``-wide feature vector. Every pixel is seen once
  and position is kept exactly, which the position and orientation heads need.
  Ten image moments (mass, centroid, second and third central moments) are
  appended: they give position, scale and orientation almost for free.
* q(factors | X): an MLP head on the trunk features, 113 logits (5 softmaxes).
* q(Z | X, factors): an MLP on the trunk features and the factor one-hots.
* decoder: an MLP maps the factor one-hots and Z to a ``dec_channels``
  feature per cell of an 8x8 grid (plus a learned cell position embedding);
  one small MLP shared by all cells turns each cell's feature into its 8x8
  block of pixel logits.

About 3 M multiply-adds per image forward, a quarter of the seed's MLP CVAE.

>>> import torch
>>> net = CVAENet(ArchConfig(latent_dim=6))
>>> classes = torch.tensor([[0, 5, 0, 16, 16]])
>>> net.decode_logits(onehot(classes), torch.zeros(1, 6)).shape
torch.Size([1, 64, 64])
>>> sorted(net.factor_logits(torch.zeros(1, 64, 64)))
['orientation', 'posX', 'posY', 'scale', 'shape']
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dsprites import FACTORS, SIZES
from ..errors import CheckpointError, CvaeqError

__all__ = ["ArchConfig", "CVAENet", "onehot", "parse_arch", "split_logits", "ONEHOT_DIM"]

#: Width of the concatenated factor one-hots: 3 + 6 + 40 + 32 + 32.
ONEHOT_DIM = sum(SIZES[f] for f in FACTORS)
#: Centroid frequencies, and the image moments plus centroid Fourier features
#: appended to the trunk features (see :meth:`CVAENet.moments`).
N_FREQS = 16
N_MOMENTS = 10 + 4 * N_FREQS
_OFFSETS = torch.tensor([0] + [SIZES[f] for f in FACTORS[:-1]]).cumsum(0)


@dataclass(frozen=True)
class ArchConfig:
    """Sizes of the networks; stored in checkpoints so a model can be rebuilt.

    :param latent_dim: dimension of Z (the story's ``latent_dim``).
    :param patch_channels: features per 4x4 patch (16x16 grid).
    :param merge_channels: features per merged 8x8-pixel cell (8x8 grid).
    :param hidden: width of the trunk's feature vector and the MLP layers.
    :param dec_channels: decoder features per 8x8-pixel cell.
    :param cell_hidden: width of the shared cell MLP that emits 8x8 pixels.
    :param dec_hidden: width of the decoder MLP's hidden layers.
    :param dec_layers: number of hidden layers of the decoder MLP.
    :param centroid_correction: 1 to add Fourier features of a corrected
        centroid (see :meth:`CVAENet.moments`), 0 not to (checkpoints written
        before it existed load as 0).
    """

    latent_dim: int = 6
    patch_channels: int = 32
    merge_channels: int = 32
    hidden: int = 256
    dec_channels: int = 32
    cell_hidden: int = 64
    dec_hidden: int = 512
    dec_layers: int = 2
    centroid_correction: int = 1

    def __post_init__(self):
        # a switch: any positive value means on
        object.__setattr__(self, "centroid_correction", int(bool(self.centroid_correction)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ArchConfig":
        names = {f.name for f in fields(cls)}
        if isinstance(d, dict) and "centroid_correction" not in d:
            d = {**d, "centroid_correction": 0}
        if not isinstance(d, dict) or set(d) != names:
            raise CheckpointError(f"architecture config must have exactly the keys {sorted(names)}, got {d!r}")
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= (0 if k == "centroid_correction" else 1)
                 for k, v in d.items())
        if not ok:
            raise CheckpointError(f"architecture sizes must be positive integers, got {d!r}")
        return cls(**d)


def parse_arch(text: str) -> dict[str, int]:
    """Sizes given as ``"key=value,key=value"`` (``cvaeq train --arch``),
    checked against :class:`ArchConfig`'s fields. ``latent_dim`` is the
    story's and cannot be set here.

    >>> parse_arch("dec_hidden=256, cell_hidden=32")
    {'dec_hidden': 256, 'cell_hidden': 32}
    """
    allowed = [f.name for f in fields(ArchConfig) if f.name != "latent_dim"]
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (s.strip() for s in part.partition("="))
        if key == "latent_dim":
            raise CvaeqError("--arch: latent_dim is set by the story (its latent_dim); leave it out")
        if not sep or key not in allowed:
            raise CvaeqError(f"--arch: expected key=value pairs with keys among {', '.join(allowed)}; got {part!r}")
        low = 0 if key == "centroid_correction" else 1
        if not value.isdigit() or int(value) < low:
            raise CvaeqError(f"--arch: {key} must be an integer >= {low}, got {value!r}")
        out[key] = int(value)
    if not out:
        raise CvaeqError("--arch: give at least one key=value pair, e.g. --arch dec_hidden=256,cell_hidden=32")
    return out


def onehot(classes: torch.Tensor) -> torch.Tensor:
    """``(S, 113)`` float one-hots of ``(S, 5)`` factor classes, FACTORS order."""
    classes = classes.long()
    out = torch.zeros(classes.shape[0], ONEHOT_DIM, device=classes.device)
    out.scatter_(1, classes + _OFFSETS.to(classes.device), 1.0)
    return out


def split_logits(flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split ``(S, 113)`` concatenated logits into ``{factor: (S, size)}``."""
    return dict(zip(FACTORS, flat.split([SIZES[f] for f in FACTORS], dim=-1)))


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
        c1, c2, h = config.patch_channels, config.merge_channels, config.hidden
        dc, zd = config.dec_channels, config.latent_dim
        # trunk: 4x4 patches (16x16 grid) -> 2x2 merge (8x8 grid) -> hidden
        self.patch = nn.Linear(16, c1)
        self.patch_pos = nn.Parameter(torch.zeros(256, c1))  # row-major over the 16x16 patch grid
        n = torch.arange(256)  # patch n of features(): cell (n // 32, n // 4 % 8), 2x2 slot (n // 2 % 2, n % 2)
        self.register_buffer("patch_order", (2 * (n // 32) + n // 2 % 2) * 16 + 2 * (n // 4 % 8) + n % 2,
                             persistent=False)
        self.merge = nn.Linear(4 * c1, c2)
        self.fc = nn.Linear(64 * c2, h)
        c = (torch.arange(64, dtype=torch.float32) + 0.5) / 32 - 1
        gu, gv = c.repeat(64), c.repeat_interleave(64)  # x and y of each pixel, in [-1, 1]
        monomials = [gu, gv, gu * gu, gu * gv, gv * gv, gu**3, gu * gu * gv, gu * gv * gv, gv**3]
        self.register_buffer("monomials", torch.stack(monomials, 1), persistent=False)
        self.register_buffer("centroid_freqs", math.pi * torch.arange(1, N_FREQS + 1, dtype=torch.float32),
                             persistent=False)
        if config.centroid_correction:
            # learned map from the heart-like skew of the image to its centroid's offset
            self.centroid_shift = nn.Parameter(torch.zeros(2, 2))
        hf = h + N_MOMENTS + (2 + 4 * N_FREQS) * config.centroid_correction
        # q(factors | X)
        self.factor_head = nn.Sequential(nn.Linear(hf, h), nn.SiLU(), nn.Linear(h, ONEHOT_DIM))
        # q(Z | X, factors)
        self.z_head = nn.Sequential(nn.Linear(hf + ONEHOT_DIM, h), nn.SiLU(), nn.Linear(h, 2 * zd))
        # p(X | factors, Z): MLP -> a feature per 8x8-pixel cell -> shared cell MLP -> pixels
        dh = config.dec_hidden
        layers: list[nn.Module] = [nn.Linear(ONEHOT_DIM + zd, dh), nn.SiLU()]
        for _ in range(config.dec_layers - 1):
            layers += [nn.Linear(dh, dh), nn.SiLU()]
        self.dec_mlp = nn.Sequential(*layers, nn.Linear(dh, 64 * dc))
        self.cell_pos = nn.Parameter(torch.zeros(64, dc))
        self.cell = nn.Sequential(
            nn.SiLU(), nn.Linear(dc, config.cell_hidden), nn.SiLU(), nn.Linear(config.cell_hidden, 64)
        )
        with torch.no_grad():  # start near the mean pixel (~5% on): a faster, calmer start
            self.cell[-1].bias.fill_(-3.0)

    # -- pieces -----------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, hidden + 74 [+ 66])`` trunk features of images (learned features and
        image moments), shared by both encoders."""
        s = x.shape[0]
        # patches ordered by merged cell, then 2x2 within it (rows R, r, pixel rows i;
        # columns C, c, j): the merge below is then a view, not a copy
        p = x.reshape(s, 8, 2, 4, 8, 2, 4).permute(0, 1, 4, 2, 5, 3, 6).reshape(s, 256, 16)
        h = F.silu(self.patch(p) + self.patch_pos[self.patch_order])
        h = F.silu(self.merge(h.view(s, 64, 4 * h.shape[-1])))
        return torch.cat([F.silu(self.fc(h.flatten(1))), self.moments(x)], 1)

    def moments(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, 74)`` (or ``(S, 140)`` with ``centroid_correction``) image moments: log mass, centroid (2), central second (3)
        and third (4) moments, in units of the half-image, then sines and
        cosines of the centroid at 16 frequencies. Cheap (one product
        with a 4096x9 table of monomials), and they read position, scale and
        orientation off directly, so the heads learn those in fewer steps."""
        s = x.shape[0]
        x = x.reshape(s, 64 * 64)
        mass = x.sum(1, keepdim=True).clamp_min(1.0)
        m = (x @ self.monomials) / mass  # raw moments u, v, uu, uv, vv, uuu, uuv, uvv, vvv
        u, v, uu, uv, vv, uuu, uuv, uvv, vvv = m.unbind(1)
        central = [
            uu - u * u, uv - u * v, vv - v * v,
            uuu - 3 * u * uu + 2 * u**3,
            uuv - 2 * u * uv - v * uu + 2 * u * u * v,
            uvv - 2 * v * uv - u * vv + 2 * u * v * v,
            vvv - 3 * v * vv + 2 * v**3,
        ]
        scaled = [c * (4.0 if i < 3 else 64.0) for i, c in enumerate(central)]
        # Fourier features of the centroid (periods down to 4 pixels), so a
        # linear read-out can tell positions 1.5 pixels apart.
        freqs = self.centroid_freqs
        centroid = torch.stack([u, v], 1)
        phase = centroid[:, :, None] * freqs  # (S, 2, F)
        out = [torch.stack([torch.log(mass[:, 0]) - 5.0, u, v, *scaled], 1), phase.sin().flatten(1),
               phase.cos().flatten(1)]
        if self.config.centroid_correction:
            # A heart's centroid is off its position along its axis, by an amount
            # proportional to its scale. The first harmonic of the third moments
            # over the second, g, is exactly such a vector (zero for the
            # symmetric square and ellipse); a learned 2x2 map of g corrects the
            # centroid, and Fourier features of the corrected centroid follow.
            g = torch.stack([central[3] + central[5], central[4] + central[6]], 1)
            g = 100.0 * g / (central[0] + central[2]).clamp_min(1e-4)[:, None]
            phase2 = (centroid + g @ self.centroid_shift.T)[:, :, None] * freqs
            out += [g, phase2.sin().flatten(1), phase2.cos().flatten(1)]
        return torch.cat(out, 1)

    def factor_logits_flat(self, feats: torch.Tensor) -> torch.Tensor:
        """``(S, 113)`` concatenated q(factors | X) logits from trunk features."""
        return self.factor_head(feats)

    def z_params(self, feats: torch.Tensor, onehots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc, scale of q(Z | X, factors) from trunk features and one-hots."""
        out = self.z_head(torch.cat([feats, onehots], 1))
        loc, raw = out.chunk(2, dim=1)
        return loc, F.softplus(raw) + 1e-4

    def decode_blocks(self, onehots: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 4096)`` Bernoulli logits of p(X | factors, Z) in block order: 8x8
        cells row by row, each its 8x8 pixels (:meth:`to_blocks` of the image).
        The likelihood, a sum over pixels, needs no other order (training)."""
        s = z.shape[0]
        cells = self.dec_mlp(torch.cat([onehots, z], 1)).view(s, 64, -1) + self.cell_pos
        return self.cell(cells).view(s, 4096)  # (S, 64 cells x 64 pixels)

    @staticmethod
    def to_blocks(x: torch.Tensor) -> torch.Tensor:
        """``(S, 4096)`` images ``(S, 64, 64)`` in :meth:`decode_blocks`' order."""
        return x.reshape(-1, 8, 8, 8, 8).transpose(2, 3).reshape(-1, 4096)

    def decode_logits(self, onehots: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli logits of p(X | factors, Z) from one-hots."""
        s = z.shape[0]
        return self.decode_blocks(onehots, z).view(s, 8, 8, 8, 8).transpose(2, 3).reshape(s, 64, 64)

    # -- the engine's protocol -------------------------------------------
    def decode_probs(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli pixel probabilities of p(X | factors, Z)."""
        return torch.sigmoid(self.decode_logits(onehot(classes), z))

    def pixel_logits(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli logits of p(X | factors, Z), the engine's
        stable route to the likelihood (``ImageModel``'s optional member)."""
        return self.decode_logits(onehot(classes), z)

    def factor_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X): ``{factor: (S, size)}`` logits, keys in FACTORS order."""
        return split_logits(self.factor_logits_flat(self.features(x)))

    def z_posterior(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and scale ``(S, latent_dim)`` of q(Z | X, factors)."""
        return self.z_params(self.features(x), onehot(classes))
