"""The neural networks of the causal VAE: a shared image trunk, the factor
heads q(factors | X), the latent encoder q(Z | X, factors) and the decoder
p(X | factors, Z), for any world whose images are binary, or 8-bit levels in
C channels, with sides that are multiples of 16.

Built from matrix products only, for throughput on a CPU (convolutions with
few channels are slow there, especially backwards). Two architectures share
one base (:class:`CVAENet`; ``CVAENet(config, world)`` builds the one
``config.window`` names):

* :class:`WindowNet` (``window=1``, the default for a world that names two
  position factors in ``world.model_arch["window_factors"]``, dSprites'
  ``posY`` and ``posX``): translation-equivariant where the world is. In
  dSprites a sprite at any position is the same drawing moved by a whole
  number of pixels, up to a sub-pixel shift (the centre of position class
  ``k`` is at ``16 + 32 k / 31 = k + 16 + k / 31`` pixels). So

  - decoder: an MLP maps the one-hots of the other factors (shape, scale,
    orientation), the two position values and Z to a ``dec_channels``
    feature per cell of a grid of 8x8-pixel cells (plus a learned cell
    position embedding); one small MLP shared by all cells turns each cell's
    feature into its 8x8 block of pixel logits. That is a window of half the
    image's sides (32x32 in a 64x64 image) placed with its top-left corner at
    row ``stride * row class``, column ``stride * column class`` (dSprites:
    stride 1, the classes themselves); every pixel outside it gets one learned
    background logit. What is learned of a sprite at one position holds at all;
  - trunk: a crop around the image's centroid, 8 pixels (per 64) larger than
    the window (40x40 in dSprites; its top-left corner is part of the
    features), is cut into 4x4 patches, each mapped to ``c1`` features plus a
    learned per-patch position embedding (what CoordConv's coordinate channels
    give a linear layer, generalised); 2x2 patches are merged into ``c2``
    features; the lot is flattened into a ``hidden``-wide feature vector. The
    largest dSprites sprite spans 27 pixels, so the crop holds it whole. Image
    moments (mass, centroid, second and third central moments, Fourier
    features of the centroid) are appended: they give position, scale and
    orientation almost for free;

* :class:`FullImageNet` (``window=0``; the networks of checkpoints written
  before the window existed, and of worlds without position factors): the
  trunk reads all patches of the image, and the decoder's MLP emits every
  8x8 cell of the image from all the factors' one-hots.

8-bit pictures (``world.pixel == "8bit"``, C channels, e.g. the colour
pendulum's 3×64×64): the full-image networks only; the trunk's patches hold
all C channels (``16 C`` numbers), the moments are those of the picture's
darkness, and the cell MLP emits a discretised logistic's loc and log_scale
per pixel and channel (:meth:`CVAENet.pixel_levels`) instead of a logit.

Both have q(factors | X), an MLP head on the trunk features with one softmax
per factor (113 logits in dSprites), and q(Z | X, factors), an MLP on the
trunk features and the factor one-hots. The one-hot widths and offsets come
from the world's factor sizes (:class:`FactorLayout`). In dSprites the window
networks cost about 1.3 M multiply-adds per image forward, a ninth of the
seed project's MLP CVAE (the model cvaeq started from, benchmarks/seed_vs_ours.py); the full-image ones
about 3 M.

>>> import torch
>>> net = CVAENet(ArchConfig(latent_dim=6))
>>> type(net).__name__, net.window_shape
('WindowNet', (32, 32))
>>> classes = torch.tensor([[0, 5, 0, 16, 16]])
>>> net.pixel_logits(classes, torch.zeros(1, 6)).shape
torch.Size([1, 64, 64])
>>> sorted(net.factor_logits(torch.zeros(1, 64, 64)))
['orientation', 'posX', 'posY', 'scale', 'shape']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, CvaeqError

__all__ = [
    "ArchConfig",
    "CVAENet",
    "FullImageNet",
    "WindowNet",
    "FactorLayout",
    "onehot",
    "parse_arch",
    "split_logits",
    "window_factors",
    "SWITCHES",
]

#: Centroid frequencies, and the image moments plus centroid Fourier features
#: appended to the trunk features (see :meth:`CVAENet.moments`).
N_FREQS = 16
N_MOMENTS = 10 + 4 * N_FREQS
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
    def from_dict(cls, d: dict) -> ArchConfig:
        names = {f.name for f in fields(cls)}
        if isinstance(d, dict):  # switches added later are off in configs written before them
            d = {**{k: 0 for k in _SWITCHES}, **d}
        if not isinstance(d, dict) or set(d) != names:
            raise CheckpointError(f"architecture config must have exactly the keys {sorted(names)}, got {d!r}")
        ok = all(
            isinstance(v, int) and not isinstance(v, bool) and v >= (0 if k in _SWITCHES else 1) for k, v in d.items()
        )
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


class FactorLayout:
    """Where each factor's one-hot sits in the concatenated one-hots of some
    of a world's factors (all of them by default), in the world's order.

    >>> from cvaeq.world import get_world
    >>> layout = FactorLayout(get_world("dsprites"))
    >>> layout.dim, layout.sizes
    (113, (3, 6, 40, 32, 32))
    """

    def __init__(self, world, names: Sequence[str] | None = None):
        names = tuple(world.names if names is None else names)
        #: the factors' names, their columns in a classes array and their sizes
        self.names = names
        self.columns = tuple(world.index(f) for f in names)
        self.sizes = tuple(world.sizes[f] for f in names)
        #: width of the concatenated one-hots
        self.dim = sum(self.sizes)
        self.offsets = torch.tensor([0, *self.sizes[:-1]]).cumsum(0)
        self._all = self.columns == tuple(range(len(world.names)))

    def onehot(self, classes: torch.Tensor) -> torch.Tensor:
        """``(S, dim)`` float one-hots of the layout's factors of ``(S, F)`` classes."""
        classes = classes.long()
        if not self._all:
            classes = classes[:, list(self.columns)]
        out = torch.zeros(classes.shape[0], self.dim, device=classes.device)
        out.scatter_(1, classes + self.offsets.to(classes.device), 1.0)
        return out

    def split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split ``(S, dim)`` concatenated logits into ``{factor: (S, size)}``."""
        return dict(zip(self.names, flat.split(list(self.sizes), dim=-1)))


def _layout(world=None) -> FactorLayout:
    from ..world import get_world

    return FactorLayout(get_world(world))


def onehot(classes: torch.Tensor, world=None) -> torch.Tensor:
    """``(S, sum of sizes)`` float one-hots of ``(S, F)`` factor classes of
    ``world`` (None: the default world), in its factor order."""
    return _layout(world).onehot(classes)


def split_logits(flat: torch.Tensor, world=None) -> dict[str, torch.Tensor]:
    """Split concatenated logits into ``{factor: (S, size)}`` of ``world`` (None: the default world)."""
    return _layout(world).split(flat)


class CVAENet(nn.Module):
    """All networks of the causal VAE, with the image-model protocol's methods
    (:mod:`cvaeq.image_model`).

    ``latent_dim``; ``pixel_logits``/``decode_probs`` (p(X | factors, Z));
    ``factor_logits`` (q(factors | X)); ``z_posterior`` (q(Z | X, factors));
    and the optional split encoder: ``features``, ``factor_logits_of``, ``z_posterior_of``.
    Images are ``(S, H, W)`` (or ``(S, 1, H, W)``) floats in [0, 1], the
    world's ``image_shape``. ``CVAENet(config, world)`` is a
    :class:`WindowNet` or a :class:`FullImageNet` as ``config.window`` says;
    a subclass that sets ``_variants`` in its own body dispatches the same way.

    :param world: the :class:`~cvaeq.world.World` (None: the default world).
    """

    #: ``{window?: subclass}``, set on the class whose construction dispatches
    _variants: ClassVar[dict[bool, type]]
    # buffers and modules whose types torch's ``__getattr__`` does not say
    monomials: torch.Tensor
    centroid_freqs: torch.Tensor
    steps: torch.Tensor
    patch_order: torch.Tensor
    centroid_shift: nn.Parameter
    cell: nn.Sequential

    def __new__(cls, config: ArchConfig | None = None, *args, **kwargs):
        variants = cls.__dict__.get("_variants")
        if variants is not None and config is not None:
            cls = variants[bool(config.window)]
        return super().__new__(cls)

    def __init__(self, config: ArchConfig, world=None):
        super().__init__()
        from ..world import get_world

        #: the :class:`~cvaeq.world.World` whose factors and images the networks model.
        self.world = world = get_world(world)
        self.config = config
        self.latent_dim = config.latent_dim
        #: the one-hot layout of all the world's factors
        self.layout = FactorLayout(world)
        self._take_pictures(world, config)
        h_img, w_img = self.image_shape
        self._setup_geometry()
        c1, c2, h = config.patch_channels, config.merge_channels, config.hidden
        zd = config.latent_dim
        # trunk: 4x4 patches -> 2x2 merge -> hidden, over trunk_shape (the image or a crop of it)
        th, tw = self.trunk_shape
        self.patch = nn.Linear(16 * self.channels, c1)
        self.patch_pos = nn.Parameter(torch.zeros((th // 4) * (tw // 4), c1))
        self._setup_patch_order()
        self.merge = nn.Linear(4 * c1, c2)
        self.fc = nn.Linear((th // 8) * (tw // 8) * c2, h)
        self._setup_moments(h_img, w_img, config)
        hf = h + N_MOMENTS + (2 + 4 * N_FREQS) * config.centroid_correction + self.n_extra_features
        # q(factors | X)
        self.factor_head = nn.Sequential(nn.Linear(hf, h), nn.SiLU(), nn.Linear(h, self.layout.dim))
        # q(Z | X, factors)
        self.z_head = nn.Sequential(nn.Linear(hf + self.layout.dim, h), nn.SiLU(), nn.Linear(h, 2 * zd))
        self._setup_decoder(config)
        self._setup_output()

    def _take_pictures(self, world, config: ArchConfig) -> None:
        """The pictures' kind, channels and plane, checked against what these networks decode."""
        #: the pixel kind the decoder models (``"binary"``: Bernoulli logits; ``"8bit"``: a discretised
        #: logistic's loc and log_scale per pixel and channel, :meth:`pixel_levels`) and the channels
        self.pixel = world.pixel
        self.channels = world.channels
        if self.pixel == "binary" and self.channels != 1:
            raise CvaeqError(
                f"the causal VAE decodes binary pictures of one channel; world {world.name!r} has {self.channels}"
            )
        #: ``(H, W)``: the plane of the picture (each of its ``channels``)
        h_img, w_img = self.image_shape = tuple(world.image_shape[-2:])
        if self.pixel != "binary" and config.window:
            raise CvaeqError(
                f"the causal VAE's window networks decode binary pictures only; world {world.name!r} "
                f"has {self.pixel} pictures: use window=0"
            )
        if h_img % 16 or w_img % 16 or h_img < 16 or w_img < 16:
            raise CvaeqError(
                f"the causal VAE's networks need image sides that are multiples of 16 (16, 32, 48, "
                f"64, ...); world {world.name!r} has {h_img}x{w_img} images"
            )

    def _setup_moments(self, h_img: int, w_img: int, config: ArchConfig) -> None:
        """The fixed tables the image moments are read with, and the centroid correction."""
        cu = (torch.arange(w_img, dtype=torch.float32) + 0.5) / (w_img / 2) - 1
        cv = (torch.arange(h_img, dtype=torch.float32) + 0.5) / (h_img / 2) - 1
        gu, gv = cu.repeat(h_img), cv.repeat_interleave(w_img)  # x and y of each pixel, in [-1, 1]
        monomials = [gu, gv, gu * gu, gu * gv, gv * gv, gu**3, gu * gu * gv, gu * gv * gv, gv**3]
        self.register_buffer("monomials", torch.stack(monomials, 1), persistent=False)
        self.register_buffer(
            "centroid_freqs", math.pi * torch.arange(1, N_FREQS + 1, dtype=torch.float32), persistent=False
        )
        self.register_buffer("steps", torch.arange(max(h_img, w_img)), persistent=False)
        if config.centroid_correction:
            # learned map from the heart-like skew of the image to its centroid's offset
            self.centroid_shift = nn.Parameter(torch.zeros(2, 2))

    def _setup_decoder(self, config: ArchConfig) -> None:
        """p(X | factors, Z): MLP -> a feature per 8x8-pixel cell -> shared cell MLP -> pixels."""
        dc, zd = config.dec_channels, config.latent_dim
        dh = config.dec_hidden
        dh_img, dw_img = self.decoded_shape
        n_cells = (dh_img // 8) * (dw_img // 8)
        layers: list[nn.Module] = [nn.Linear(self.n_decoder_inputs + zd, dh), nn.SiLU()]
        for _ in range(config.dec_layers - 1):
            layers += [nn.Linear(dh, dh), nn.SiLU()]
        self.dec_mlp = nn.Sequential(*layers, nn.Linear(dh, n_cells * dc))
        self.cell_pos = nn.Parameter(torch.zeros(n_cells, dc))
        #: numbers the cell MLP emits per pixel: a logit (binary), or loc and log_scale per channel (8-bit)
        self.per_pixel = 1 if self.pixel == "binary" else 2 * self.channels
        self.cell = nn.Sequential(
            nn.SiLU(), nn.Linear(dc, config.cell_hidden), nn.SiLU(), nn.Linear(config.cell_hidden, 64 * self.per_pixel)
        )
        last = self.cell[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():  # start near the mean pixel (~5% on): a faster, calmer start
            if self.pixel == "binary":
                last.bias.fill_(-3.0)
            else:  # 8-bit: loc near a light background, a wide scale
                bias = last.bias.view(2, self.channels * 64)
                bias[0].fill_(0.8)
                bias[1].fill_(-2.0)

    # -- what the two architectures decide ----------------------------------
    #: ``(H, W)`` the trunk reads, and ``(H, W)`` the decoder draws
    trunk_shape: tuple[int, int]
    decoded_shape: tuple[int, int]
    #: trunk features beyond the learned ones and the moments; decoder inputs besides Z
    n_extra_features: int
    n_decoder_inputs: int

    def _setup_geometry(self) -> None:
        raise NotImplementedError

    def _setup_patch_order(self) -> None:
        """Buffers that map the trunk's patch order to ``patch_pos`` (none by default)."""

    def _setup_output(self) -> None:
        """Parameters of the output beyond the decoded cells (none by default)."""

    def trunk_input(self, x: torch.Tensor, moments: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The ``(S, *trunk_shape)`` pixels the trunk reads and any extra features."""
        raise NotImplementedError

    def patch_positions(self) -> torch.Tensor:
        """``(patches, c1)`` position embeddings in the order :meth:`features` cuts patches."""
        return self.patch_pos

    def decoder_inputs(self, classes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(S, n_decoder_inputs)`` what the decoder's MLP reads of the factors (Z's ``dtype``)."""
        raise NotImplementedError

    # -- pieces -----------------------------------------------------------
    def _square_index(self, top: torch.Tensor, left: torch.Tensor, size) -> tuple[torch.Tensor, ...]:
        """Index of the ``(S, h, w)`` rectangles (``size`` = h or (h, w)) of
        ``(S, H, W)`` images with top-left corners ``(top, left)`` ``(S,)`` (they must fit)."""
        h, w = (size, size) if isinstance(size, int) else size
        rows = (top.long()[:, None] + self.steps[:h])[:, :, None]
        cols = (left.long()[:, None] + self.steps[:w])[:, None, :]
        return torch.arange(top.shape[0], device=top.device)[:, None, None], rows, cols

    def square(self, x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size) -> torch.Tensor:
        """``(S, h, w)`` rectangles (``size`` = h or (h, w)) of images ``x``
        ``(S, H, W)`` with their top-left corners at ``(top, left)`` ``(S,)`` (they must fit)."""
        return x[self._square_index(top, left, size)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, F)`` trunk features of images (learned features, image moments
        and any extra features of the architecture), shared by both encoders."""
        s = x.shape[0]
        if self.channels != 1 or self.pixel != "binary":
            return self._features_8bit(x)
        x = x.reshape(s, *self.image_shape)
        moments = self.moments(x)
        x, extra = self.trunk_input(x, moments)
        rows, cols = x.shape[-2] // 8, x.shape[-1] // 8  # merged cells per side
        # patches ordered by merged cell, then 2x2 within it (rows R, r, pixel rows i;
        # columns C, c, j): the merge below is then a view, not a copy
        p = x.reshape(s, rows, 2, 4, cols, 2, 4).permute(0, 1, 4, 2, 5, 3, 6).reshape(s, 4 * rows * cols, 16)
        h = F.silu(self.patch(p) + self.patch_positions())
        h = F.silu(self.merge(h.view(s, rows * cols, 4 * h.shape[-1])))
        return torch.cat([F.silu(self.fc(h.flatten(1))), moments, *extra], 1)

    def _features_8bit(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`features` of ``(S, C, H, W)`` pictures of levels / 255: 4x4 patches of every channel
        (``16 C`` numbers each); the moments are those of the picture's darkness (one minus the mean
        over the channels), the full-image networks' trunk (window=0)."""
        s, c = x.shape[0], self.channels
        x = x.reshape(s, c, *self.image_shape)
        moments = self.moments(1.0 - x.mean(1))
        rows, cols = x.shape[-2] // 8, x.shape[-1] // 8
        p = x.reshape(s, c, rows, 2, 4, cols, 2, 4).permute(0, 2, 5, 3, 6, 1, 4, 7).reshape(s, 4 * rows * cols, 16 * c)
        h = F.silu(self.patch(p) + self.patch_positions())
        h = F.silu(self.merge(h.view(s, rows * cols, 4 * h.shape[-1])))
        return torch.cat([F.silu(self.fc(h.flatten(1))), moments], 1)

    def moments(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, 74)`` (or ``(S, 140)`` with ``centroid_correction``) image moments: log mass, centroid (2),
        central second (3) and third (4) moments, in units of the half-image, then sines and
        cosines of the centroid at 16 frequencies. Cheap (one product
        with a (H W)x9 table of monomials), and they read position, scale and
        orientation off directly, so the heads learn those in fewer steps."""
        s = x.shape[0]
        x = x.reshape(s, self.image_shape[0] * self.image_shape[1])
        mass = x.sum(1, keepdim=True).clamp_min(1.0)
        m = (x @ self.monomials) / mass  # raw moments u, v, uu, uv, vv, uuu, uuv, uvv, vvv
        u, v, uu, uv, vv, uuu, uuv, uvv, vvv = m.unbind(1)
        central = [
            uu - u * u,
            uv - u * v,
            vv - v * v,
            uuu - 3 * u * uu + 2 * u**3,
            uuv - 2 * u * uv - v * uu + 2 * u * u * v,
            uvv - 2 * v * uv - u * vv + 2 * u * v * v,
            vvv - 3 * v * vv + 2 * v**3,
        ]
        scaled = [c * (4.0 if i < 3 else 64.0) for i, c in enumerate(central)]
        # Fourier features of the centroid (periods down to 4 pixels in 64), so a
        # linear read-out can tell positions 1.5 pixels apart.
        freqs = self.centroid_freqs
        centroid = torch.stack([u, v], 1)
        phase = centroid[:, :, None] * freqs  # (S, 2, F)
        out = [
            torch.stack([torch.log(mass[:, 0]) - 5.0, u, v, *scaled], 1),
            phase.sin().flatten(1),
            phase.cos().flatten(1),
        ]
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

    def onehot(self, classes: torch.Tensor) -> torch.Tensor:
        """``(S, layout.dim)`` one-hots of all the factors of ``(S, F)`` classes."""
        return self.layout.onehot(classes)

    def factor_logits_flat(self, feats: torch.Tensor) -> torch.Tensor:
        """``(S, layout.dim)`` concatenated q(factors | X) logits from trunk features."""
        return self.factor_head(feats)

    def z_params(self, feats: torch.Tensor, onehots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc, scale of q(Z | X, factors) from trunk features and one-hots."""
        out = self.z_head(torch.cat([feats, onehots], 1))
        loc, raw = out.chunk(2, dim=1)
        return loc, F.softplus(raw) + 1e-4

    def decode_blocks(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, cells x 64)`` Bernoulli logits of :attr:`decoded_shape` in block
        order: 8x8-pixel cells row by row, each its 8x8 pixels (:meth:`to_blocks`).
        The likelihood, a sum over pixels, needs no other order (training)."""
        s = z.shape[0]
        cells = self.dec_mlp(torch.cat([self.decoder_inputs(classes, z.dtype), z], 1)).view(
            s, self.cell_pos.shape[0], -1
        )
        if torch.is_grad_enabled() or _hooked(self.cell):  # training, or hooks to see the modules' calls
            return self.cell(cells + self.cell_pos).view(s, -1)
        return _cell_answer(self.cell, cells + self.cell_pos).view(s, -1)

    @staticmethod
    def to_blocks(x: torch.Tensor) -> torch.Tensor:
        """``(S, h * w)`` images ``(S, h, w)`` (sides multiples of 8) in :meth:`decode_blocks`' order."""
        h, w = x.shape[-2:]
        return x.reshape(-1, h // 8, 8, w // 8, 8).transpose(2, 3).reshape(-1, h * w)

    @staticmethod
    def from_blocks(blocks: torch.Tensor, h: int | None = None, w: int | None = None) -> torch.Tensor:
        """``(S, h, w)`` images from :meth:`to_blocks`' order (square when ``h`` is not given)."""
        s = blocks.shape[0]
        if h is None:
            h = math.isqrt(blocks.shape[-1])
        w = h if w is None else w
        return blocks.reshape(s, h // 8, w // 8, 8, 8).transpose(2, 3).reshape(s, h, w)

    def decoded_logits(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, *decoded_shape)`` the decoder's logits, in pixel order."""
        return self.from_blocks(self.decode_blocks(classes, z), *self.decoded_shape)

    # -- 8-bit pictures ----------------------------------------------------
    #: the clamp of the decoder's log-scale (on the [0, 1] scale of levels): from e^-8 (a bin of
    #: 1/255 then holds 99.4% of a pixel's mass, so a sure pixel costs 0.008 bits) to e^0 (flat)
    LOG_SCALE_RANGE = (-8.0, 0.0)

    def level_blocks(self, classes: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and log_scale ``(S, cells, C * 64)`` of an 8-bit decoder in block order: each 8x8-pixel
        cell's channels, then its pixels row by row (:meth:`to_level_blocks`); log_scale clamped to
        :attr:`LOG_SCALE_RANGE`. The likelihood, a sum, needs no other order (training)."""
        out = self.decode_blocks(classes, z).view(z.shape[0], self.cell_pos.shape[0], 2, self.channels * 64)
        low, high = self.LOG_SCALE_RANGE
        # clamped where it lies when answering (the decoding is this call's own), a copy when training
        log_scale = out[:, :, 1].clamp(low, high) if torch.is_grad_enabled() else out[:, :, 1].clamp_(low, high)
        return out[:, :, 0], log_scale

    def to_level_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, cells, C * 64)`` pictures ``(S, C, H, W)`` in :meth:`level_blocks`' order."""
        (h, w), c = self.image_shape, self.channels
        return x.reshape(-1, c, h // 8, 8, w // 8, 8).permute(0, 2, 4, 1, 3, 5).reshape(-1, (h // 8) * (w // 8), c * 64)

    def from_level_blocks(self, blocks: torch.Tensor) -> torch.Tensor:
        """``(S, C, H, W)`` from :meth:`level_blocks`' order. Levels (uint8) move a cell's rows of 8
        pixels as one 8-byte word each: the same bytes, an eighth of the elements to move."""
        (h, w), c = self.image_shape, self.channels
        if blocks.dtype == torch.uint8 and blocks.is_contiguous() and blocks.numel():
            words = blocks.view(torch.int64).reshape(-1, h // 8, w // 8, c, 8, 1)
            return words.permute(0, 3, 1, 4, 2, 5).reshape(-1, c, h, w // 8).view(torch.uint8)
        return blocks.reshape(-1, h // 8, w // 8, c, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(-1, c, h, w)

    def pixel_levels(self, classes: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and log_scale ``(S, C, H, W)`` of p(X | factors, Z) for an 8-bit world: each pixel and
        channel is the discretised logistic of :mod:`cvaeq.levels` (loc on the [0, 1] scale)."""
        if self.pixel != "8bit":
            raise CvaeqError(f"this causal VAE decodes {self.pixel} pictures: use pixel_logits, not pixel_levels")
        loc, log_scale = self.level_blocks(classes, z)
        return self.from_level_blocks(loc), self.from_level_blocks(log_scale)

    # -- the image-model protocol (cvaeq.image_model) -------------------
    def pixel_logits(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, H, W)`` Bernoulli logits of p(X | factors, Z); the engine's
        stable route to the likelihood (``ImageModel``'s optional member).
        Binary pictures only (an 8-bit model gives :meth:`pixel_levels`)."""
        if self.pixel != "binary":
            raise CvaeqError(f"this causal VAE decodes {self.pixel} pictures: use pixel_levels, not Bernoulli logits")
        return self.decoded_logits(classes, z)

    def decode_probs(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(S, H, W)`` Bernoulli pixel probabilities of p(X | factors, Z) (binary pictures only)."""
        return torch.sigmoid(self.pixel_logits(classes, z))

    def factor_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X): ``{factor: (S, size)}`` logits, keys in the world's order."""
        return self.factor_logits_of(self.shared_features(x))

    def z_posterior(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and scale ``(S, latent_dim)`` of q(Z | X, factors)."""
        return self.z_posterior_of(self.shared_features(x), classes)

    def shared_features(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`features` of images ``(S, H, W)``, computed once when they are
        one image expanded over the rows (stride 0: an evidence image given to
        every particle)."""
        if x.dim() > 1 and x.shape[0] > 1 and x.stride(0) == 0:
            return self.features(x[:1]).expand(x.shape[0], -1)
        return self.features(x)

    # -- the split encoder (cvaeq.image_model.SplitEncoder): one read of an image for both heads --
    def factor_logits_of(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(factors | X) from :meth:`features`: ``{factor: (S, size)}``."""
        return self.layout.split(self.factor_logits_flat(feats))

    def z_posterior_of(self, feats: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(Z | X, factors) from :meth:`features` and ``(S, F)`` classes."""
        return self.z_params(feats, self.onehot(classes))


class FullImageNet(CVAENet):
    """``window=0``: the trunk reads every patch of the image, the decoder
    draws every 8x8 cell of it from all the factors' one-hots."""

    def _setup_geometry(self) -> None:
        self.trunk_shape = self.decoded_shape = self.image_shape
        self.n_extra_features = 0
        self.n_decoder_inputs = self.layout.dim

    def _setup_patch_order(self) -> None:
        # patch_pos is row-major over the patch grid; features() cuts patches by merged
        # cell: patch n is in cell (n // (4 mc), n // 4 % mc), 2x2 slot (n // 2 % 2, n % 2)
        h, w = self.image_shape
        mc = w // 8
        n = torch.arange((h // 4) * (w // 4))
        order = (2 * (n // (4 * mc)) + n // 2 % 2) * (w // 4) + 2 * (n // 4 % mc) + n % 2
        self.register_buffer("patch_order", order, persistent=False)

    def trunk_input(self, x, moments):
        return x, []

    def patch_positions(self) -> torch.Tensor:
        return self.patch_pos[self.patch_order]

    def decoder_inputs(self, classes, dtype):
        return self.onehot(classes)


class WindowNet(CVAENet):
    """``window=1``: the decoder draws a window of half the image's sides
    placed by the world's two position factors, the trunk reads a crop
    around the image's centroid (module docstring)."""

    def _setup_geometry(self) -> None:
        world = self.world
        names = window_factors(world)
        if names is None:
            raise CvaeqError(
                f"the causal VAE's window networks need two position factors, and world "
                f"{world.name!r} names none (model_arch['window_factors']); use window=0"
            )
        h, w = self.image_shape
        #: the (row, column) position factors, their columns, and pixels per class
        self.position_factors = names
        self.position_columns = (world.index(names[0]), world.index(names[1]))
        self.window_shape = (h // 2, w // 2)
        margin = 8 * max(1, h // 64), 8 * max(1, w // 64)
        #: the trunk's crop around the centroid: 8 pixels (per 64) larger than the window
        self.crop_shape = (h // 2 + margin[0], w // 2 + margin[1])
        strides = []
        for name, side, win in zip(names, (h, w), self.window_shape):
            n = world.sizes[name]
            stride = (side - win) // (n - 1) if n > 1 else 0
            if n > 1 and stride < 1:
                raise CvaeqError(
                    f"the causal VAE's window networks place a {win}-pixel window by {name}, whose "
                    f"{n} classes cannot each move it a pixel in {side}; use window=0"
                )
            strides.append(stride)
        self.strides = tuple(strides)
        self.trunk_shape, self.decoded_shape = self.crop_shape, self.window_shape
        self.n_extra_features = 2
        #: the one-hots of the factors other than the positions (the decoder's input)
        self.drawing_layout = FactorLayout(world, [f for f in world.names if f not in names])
        self.n_decoder_inputs = self.drawing_layout.dim + 2

    def _setup_output(self) -> None:
        # the logit of every pixel outside the window (the true images have none on)
        self.background = nn.Parameter(torch.tensor(-9.0))

    def crop_corner(self, moments: torch.Tensor) -> torch.Tensor:
        """``(S, 2)`` long (column, row) of the top-left corner of the trunk's
        crop: centred on the centroid (``moments[:, 1:3]``), inside the image."""
        (h, w), (ch, cw) = self.image_shape, self.crop_shape
        with torch.no_grad():
            col = ((moments[:, 1:2] + 1) * (w / 2) - cw / 2).round().clamp(0, w - cw)
            row = ((moments[:, 2:3] + 1) * (h / 2) - ch / 2).round().clamp(0, h - ch)
            return torch.cat([col, row], 1).long()

    def trunk_input(self, x, moments):
        (h, w), (ch, cw) = self.image_shape, self.crop_shape
        corner = self.crop_corner(moments)
        x = self.square(x, corner[:, 1], corner[:, 0], self.crop_shape)
        c = corner.to(x.dtype)
        return x, [torch.cat([c[:, :1] * (2 / (w - cw)) - 1, c[:, 1:] * (2 / (h - ch)) - 1], 1)]

    def decoder_inputs(self, classes, dtype):
        cols = sorted(self.position_columns)  # the positions in the world's column order
        pos = [classes[:, i : i + 1].to(dtype) * (2 / max(self.world.factors[i].size - 1, 1)) - 1 for i in cols]
        return torch.cat([self.drawing_layout.onehot(classes), *pos], 1)

    def window_corner(self, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S,)`` rows and columns of the windows' top-left corners."""
        (r, c), (sr, sc) = self.position_columns, self.strides
        top, left = classes[:, r], classes[:, c]
        return (top * sr if sr != 1 else top), (left * sc if sc != 1 else left)

    def place_window(self, window: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``(S, H, W)`` logits: the window logits placed at the positions, the
        background logit everywhere else."""
        s = window.shape[0]
        (h, w), (wh, ww) = self.image_shape, self.window_shape
        top, left = self.window_corner(classes)
        # flat index of every window pixel: one scatter along each row (a few
        # times faster than indexing with three broadcast index tensors)
        within = (self.steps[:wh, None] * w + self.steps[:ww]).reshape(1, -1)
        index = (top.long() * w + left.long()).reshape(s, 1) + within
        full = self.background.to(window.dtype).expand(s, h * w).clone()
        return full.scatter_(1, index, window.reshape(s, -1)).view(s, h, w)

    def window_of(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``(S, *window_shape)`` the decoder's windows of images ``(S, H, W)`` at the classes' positions."""
        return self.square(x.reshape(-1, *self.image_shape), *self.window_corner(classes), self.window_shape)

    def pixel_logits(self, classes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.place_window(self.decoded_logits(classes, z), classes)


CVAENet._variants = {False: FullImageNet, True: WindowNet}


def _cell_answer(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` for the cell MLP outside autograd (answering, not training), in fewer passes:
    each linear layer a product with its bias added in place, each SiLU in place on the layer's
    own output (``x`` is the caller's to overwrite). The same numbers as the modules give: addmm
    adds the bias after the product too (checked for these layers' widths, 32 and 64 inputs),
    and it first copies the bias into its output, for 100 particles of a colour picture 9.8 MB:
    a quarter of the last layer's time."""
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = torch.matmul(x, layer.weight.t())
            if layer.bias is not None:
                x.add_(layer.bias)
        elif isinstance(layer, nn.SiLU):
            x = F.silu(x, inplace=True)
        else:
            x = layer(x)
    return x


def _hooked(layers: nn.Module) -> bool:
    """Whether calling ``layers`` would run forward hooks (its modules' or global ones), which
    :func:`_cell_answer`, bypassing the modules' calls, would skip."""
    from torch.nn.modules import module as m

    if m._global_forward_hooks or m._global_forward_pre_hooks:
        return True
    return any(mod._forward_hooks or mod._forward_pre_hooks for mod in layers.modules())
