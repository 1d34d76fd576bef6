"""The neural networks of the causal VAE: a shared image trunk, the factor
heads q(factors | X), the latent encoder q(Z | X, factors) and the decoder
p(X | factors, Z).

Built from matrix products only, for throughput on a CPU (convolutions with
few channels are slow there, especially backwards), and, by default
(``window=1``), translation-equivariant where the world is: a sprite at any
position is the same drawing moved by a whole number of pixels, up to a
sub-pixel shift (the centre of position class ``k`` is at ``16 + 32 k / 31 =
k + 16 + k / 31`` pixels). So

* decoder: an MLP maps the one-hots of shape, scale and orientation, the two
  position values and Z to a ``dec_channels`` feature per cell of a 4x4 grid
  (plus a learned cell position embedding); one small MLP shared by all cells
  turns each cell's feature into its 8x8 block of pixel logits. That is a
  32x32 window in which the sprite's centre sits at ``16 + k / 31``; it is
  placed with its top-left corner at row ``posY``, column ``posX`` (the
  classes), and every pixel outside it gets one learned background logit. What
  is learned of a sprite at one position holds at all 1,024;
* trunk: a 40x40 crop around the image's centroid (its top-left corner is
  part of the features) is cut into 4x4 patches (100 of them), each mapped to
  ``c1`` features plus a learned per-patch position embedding (what
  CoordConv's coordinate channels give a linear layer, generalised); 2x2
  patches are merged into ``c2`` features on a 5x5 grid; the lot is
  flattened into a ``hidden``-wide feature vector. The largest sprite spans
  27 pixels, so the crop holds it whole. Image moments (mass, centroid,
  second and third central moments, Fourier features of the centroid) are
  appended: they give position, scale and orientation almost for free;
* q(factors | X): an MLP head on the trunk features, 113 logits (5 softmaxes);
* q(Z | X, factors): an MLP on the trunk features and the factor one-hots.

About 1.3 M multiply-adds per image forward, a ninth of the seed's MLP CVAE.
``window=0`` builds the full-image networks of checkpoints written before the
window existed: the trunk reads all 256 patches of the image (8x8 merged
grid), and the decoder's MLP emits all 64 cells of the image from the 113
one-hots (about 3 M multiply-adds).

>>> import torch
>>> net = CVAENet(ArchConfig(latent_dim=6))
>>> classes = torch.tensor([[0, 5, 0, 16, 16]])
>>> net.pixel_logits(classes, torch.zeros(1, 6)).shape
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

from ..worlds.dsprites.factors import FACTORS, SIZES
from ..errors import CheckpointError, CvaeqError

__all__ = ["ArchConfig", "CVAENet", "onehot", "parse_arch", "split_logits", "ONEHOT_DIM", "WINDOW", "CROP"]

#: Width of the concatenated factor one-hots: 3 + 6 + 40 + 32 + 32.
ONEHOT_DIM = sum(SIZES[f] for f in FACTORS)
#: Centroid frequencies, and the image moments plus centroid Fourier features
#: appended to the trunk features (see :meth:`CVAENet.moments`).
N_FREQS = 16
N_MOMENTS = 10 + 4 * N_FREQS
_OFFSETS = torch.tensor([0] + [SIZES[f] for f in FACTORS[:-1]]).cumsum(0)
#: Side of the decoder's window (``window=1``): top-left corner at (posY, posX).
WINDOW = 32
#: Side of the trunk's crop around the image's centroid (``window=1``).
CROP = 40
#: Width of the one-hots of shape, scale and orientation (the first three factors).
_SHAPE_ONEHOT_DIM = SIZES["shape"] + SIZES["scale"] + SIZES["orientation"]
#: ArchConfig fields that are switches (0 or 1) rather than sizes.
SWITCHES = _SWITCHES = ("centroid_correction", "window")


def window_factors(world) -> tuple[str, str] | None:
    """The (row, column) position factors that place the decoder's window
    (``world.model_arch["window_factors"]``), or None when the world names none."""
    names = (getattr(world, "model_arch", None) or {}).get("window_factors")
    if not names or len(names) != 2 or not all(n in world.names for n in names):
        return None
    return (str(names[0]), str(names[1]))


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
    :param window: 1 for the translation-equivariant networks (the decoder
        draws a 32x32 window placed at the position, the trunk reads a 40x40
        crop around the centroid), 0 for the full-image networks (checkpoints
        written before it existed load as 0). See the module docstring.
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
    window: int = 1

    def __post_init__(self):
        for name in _SWITCHES:  # switches: any positive value means on
            object.__setattr__(self, name, int(bool(getattr(self, name))))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ArchConfig":
        names = {f.name for f in fields(cls)}
        if isinstance(d, dict):  # switches added later are off in configs written before them
            d = {**{k: 0 for k in _SWITCHES}, **d}
        if not isinstance(d, dict) or set(d) != names:
            raise CheckpointError(f"architecture config must have exactly the keys {sorted(names)}, got {d!r}")
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= (0 if k in _SWITCHES else 1)
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
        if key in _SWITCHES:
            if value not in ("0", "1"):
                raise CvaeqError(f"--arch: {key} is a switch: 0 or 1, got {value!r}")
        elif not value.isdigit() or int(value) < 1:
            raise CvaeqError(f"--arch: {key} must be an integer >= 1, got {value!r}")
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

    ``latent_dim``; ``pixel_logits``/``decode_probs`` (p(X | factors, Z));
    ``factor_logits`` (q(factors | X)); ``z_posterior`` (q(Z | X, factors)).
    Images are ``(S, 64, 64)`` (or ``(S, 1, 64, 64)``) floats in [0, 1].
    """

    def __init__(self, config: ArchConfig, world=None):
        super().__init__()
        from ..world import get_world

        #: the :class:`~cvaeq.world.World` whose factors and images the networks model.
        self.world = get_world(world)
        self.config = config
        self.latent_dim = config.latent_dim
        c1, c2, h = config.patch_channels, config.merge_channels, config.hidden
        dc, zd = config.dec_channels, config.latent_dim
        # trunk: 4x4 patches -> 2x2 merge -> hidden; of a 40x40 crop (window) or the whole image
        side = (CROP if config.window else 64) // 4  # patches per side: 10 or 16
        self.patch = nn.Linear(16, c1)
        self.patch_pos = nn.Parameter(torch.zeros(side * side, c1))
        if not config.window:  # row-major over the 16x16 patch grid, reordered as features() cuts them
            n = torch.arange(256)  # patch n of features(): cell (n // 32, n // 4 % 8), 2x2 slot (n // 2 % 2, n % 2)
            self.register_buffer("patch_order", (2 * (n // 32) + n // 2 % 2) * 16 + 2 * (n // 4 % 8) + n % 2,
                                 persistent=False)
        self.merge = nn.Linear(4 * c1, c2)
        self.fc = nn.Linear((side // 2) ** 2 * c2, h)
        c = (torch.arange(64, dtype=torch.float32) + 0.5) / 32 - 1
        gu, gv = c.repeat(64), c.repeat_interleave(64)  # x and y of each pixel, in [-1, 1]
        monomials = [gu, gv, gu * gu, gu * gv, gv * gv, gu**3, gu * gu * gv, gu * gv * gv, gv**3]
        self.register_buffer("monomials", torch.stack(monomials, 1), persistent=False)
        self.register_buffer("centroid_freqs", math.pi * torch.arange(1, N_FREQS + 1, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("steps", torch.arange(64), persistent=False)
        if config.centroid_correction:
            # learned map from the heart-like skew of the image to its centroid's offset
            self.centroid_shift = nn.Parameter(torch.zeros(2, 2))
        hf = h + N_MOMENTS + (2 + 4 * N_FREQS) * config.centroid_correction + 2 * config.window
        # q(factors | X)
        self.factor_head = nn.Sequential(nn.Linear(hf, h), nn.SiLU(), nn.Linear(h, ONEHOT_DIM))
        # q(Z | X, factors)
        self.z_head = nn.Sequential(nn.Linear(hf + ONEHOT_DIM, h), nn.SiLU(), nn.Linear(h, 2 * zd))
        # p(X | factors, Z): MLP -> a feature per 8x8-pixel cell -> shared cell MLP -> pixels
        dh = config.dec_hidden
        n_in = (_SHAPE_ONEHOT_DIM + 2 if config.window else ONEHOT_DIM) + zd
        n_cells = (WINDOW // 8) ** 2 if config.window else 64
        layers: list[nn.Module] = [nn.Linear(n_in, dh), nn.SiLU()]
        for _ in range(config.dec_layers - 1):
            layers += [nn.Linear(dh, dh), nn.SiLU()]
        self.dec_mlp = nn.Sequential(*layers, nn.Linear(dh, n_cells * dc))
        self.cell_pos = nn.Parameter(torch.zeros(n_cells, dc))
        self.cell = nn.Sequential(
            nn.SiLU(), nn.Linear(dc, config.cell_hidden), nn.SiLU(), nn.Linear(config.cell_hidden, 64)
        )
        with torch.no_grad():  # start near the mean pixel (~5% on): a faster, calmer start
            self.cell[-1].bias.fill_(-3.0)
        if config.window:
            # the logit of every pixel outside the window (the true images have none on)
            self.background = nn.Parameter(torch.tensor(-9.0))

    # -- pieces -----------------------------------------------------------
    def _square_index(self, top: torch.Tensor, left: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
        """Index of the ``(S, size, size)`` squares of ``(S, 64, 64)`` images with
        top-left corners ``(top, left)`` ``(S,)`` (they must fit)."""
        rows = (top.long()[:, None] + self.steps[:size])[:, :, None]
        cols = (left.long()[:, None] + self.steps[:size])[:, None, :]
        return torch.arange(top.shape[0], device=top.device)[:, None, None], rows, cols

    def square(self, x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
        """``(S, size, size)`` squares of images ``x`` ``(S, 64, 64)`` with their
        top-left corners at ``(top, left)`` ``(S,)`` (they must fit)."""
        return x[self._square_index(top, left, size)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, F)`` trunk features of images (learned features, image moments
        and, with ``window``, the crop's corner), shared by both encoders."""
        s = x.shape[0]
        x = x.reshape(s, 64, 64)
        moments = self.moments(x)
        extra = []
        if self.config.window:
            corner = self.crop_corner(moments)
            x = self.square(x, corner[:, 1], corner[:, 0], CROP)
            extra = [corner.to(x.dtype) * (2 / (64 - CROP)) - 1]
        side = x.shape[-1] // 8  # merged cells per side: 5 or 8
        # patches ordered by merged cell, then 2x2 within it (rows R, r, pixel rows i;
        # columns C, c, j): the merge below is then a view, not a copy
        p = x.reshape(s, side, 2, 4, side, 2, 4).permute(0, 1, 4, 2, 5, 3, 6).reshape(s, 4 * side * side, 16)
        pos = self.patch_pos if self.config.window else self.patch_pos[self.patch_order]
        h = F.silu(self.patch(p) + pos)
        h = F.silu(self.merge(h.view(s, side * side, 4 * h.shape[-1])))
        return torch.cat([F.silu(self.fc(h.flatten(1))), moments, *extra], 1)

    @staticmethod
    def crop_corner(moments: torch.Tensor) -> torch.Tensor:
        """``(S, 2)`` long (column, row) of the top-left corner of the trunk's
        40x40 crop: centred on the centroid (``moments[:, 1:3]``), inside the image."""
        with torch.no_grad():
            return ((moments[:, 1:3] + 1) * 32 - CROP / 2).round().clamp(0, 64 - CROP).long()

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

    def decode_blocks(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, cells x 64)`` Bernoulli logits in block order: 8x8-pixel cells
        row by row, each its 8x8 pixels (:meth:`to_blocks`). With ``window``,
        the 16 cells of the 32x32 window at ``(posY, posX)``; without, the 64
        cells of the image. The likelihood, a sum over pixels, needs no other
        order (training)."""
        s = z.shape[0]
        if self.config.window:
            pos = classes[:, 3:5].to(z.dtype) * (2 / (SIZES["posX"] - 1)) - 1
            inputs = [onehot(classes)[:, :_SHAPE_ONEHOT_DIM], pos, z]
        else:
            inputs = [onehot(classes), z]
        cells = self.dec_mlp(torch.cat(inputs, 1)).view(s, self.cell_pos.shape[0], -1) + self.cell_pos
        return self.cell(cells).view(s, -1)

    @staticmethod
    def to_blocks(x: torch.Tensor) -> torch.Tensor:
        """``(S, side * side)`` square images ``(S, side, side)`` (side a multiple
        of 8) in :meth:`decode_blocks`' order."""
        side = x.shape[-1]
        return x.reshape(-1, side // 8, 8, side // 8, 8).transpose(2, 3).reshape(-1, side * side)

    @staticmethod
    def from_blocks(blocks: torch.Tensor) -> torch.Tensor:
        """``(S, side, side)`` square images from :meth:`to_blocks`' order."""
        s, side = blocks.shape[0], math.isqrt(blocks.shape[-1])
        return blocks.reshape(s, side // 8, side // 8, 8, 8).transpose(2, 3).reshape(s, side, side)

    def place_window(self, window: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` logits: the ``(S, 32, 32)`` window logits placed at
        ``(posY, posX)``, the background logit everywhere else."""
        s = window.shape[0]
        full = self.background.expand(s, 64, 64).clone()
        full[self._square_index(classes[:, 4], classes[:, 3], WINDOW)] = window
        return full

    def window_of(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``(S, 32, 32)`` the decoder's windows of images ``(S, 64, 64)`` at the
        positions ``classes[:, 3:5]`` (``window`` only)."""
        return self.square(x.reshape(-1, 64, 64), classes[:, 4], classes[:, 3], WINDOW)

    # -- the engine's protocol -------------------------------------------
    def pixel_logits(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli logits of p(X | factors, Z); the engine's
        stable route to the likelihood (``ImageModel``'s optional member)."""
        square = self.from_blocks(self.decode_blocks(classes, z))
        return self.place_window(square, classes) if self.config.window else square

    def decode_probs(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, 64, 64)`` Bernoulli pixel probabilities of p(X | factors, Z)."""
        return torch.sigmoid(self.pixel_logits(classes, z))

    def factor_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X): ``{factor: (S, size)}`` logits, keys in FACTORS order."""
        return split_logits(self.factor_logits_flat(self.features(x)))

    def z_posterior(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and scale ``(S, latent_dim)`` of q(Z | X, factors)."""
        return self.z_params(self.features(x), onehot(classes))
