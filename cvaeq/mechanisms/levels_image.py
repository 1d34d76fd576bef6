"""The image X with 8-bit pixels: a discretised logistic per pixel and channel, exact abduction.

``X_j = the level whose bin holds loc_j + exp(log_scale_j) * eps_j`` with
``eps ~ Logistic(0, 1)`` one per pixel and channel, and ``(loc, log_scale)``
from the image model's ``pixel_levels(classes, z)`` (the arithmetic is
:mod:`cvaeq.levels`). It is the Bernoulli rule of
:class:`~cvaeq.mechanisms.image.BernoulliImage` with 256 bins instead of two:
given an observed picture the noise posterior is the standard logistic cut to
each pixel's bin, sampled exactly (:func:`cvaeq.levels.abduct`); the
counterfactual pixel is the bin of the same noise under the new parents, and a
null intervention gives back the evidence byte for byte.

Values of X are uint8 levels ``[S, *image_shape]`` (``(C, H, W)`` or
``(H, W)``); the image model reads pictures as float in [0, 1]
(:func:`cvaeq.levels.to_unit`). The amortised proposals q(factors | X) and
q(Z | X, factors) are the Bernoulli mechanism's, fed the picture on that scale.

>>> import torch
>>> class Grey:                      # a two-factor-free model: every pixel mid-grey
...     latent_dim, pixel = 1, "8bit"
...     def pixel_levels(self, classes, z):
...         loc = torch.full((len(z), 2, 2), 0.5)
...         return loc, torch.full_like(loc, -3.0)
...     def factor_logits(self, x): return {}
...     def z_posterior(self, x, classes): return torch.zeros(len(x), 1), torch.ones(len(x), 1)
>>> m = discretised_logistic_image(Grey(), factors=(), shape=(2, 2))
>>> picture = torch.tensor([[10, 128], [128, 250]], dtype=torch.uint8).expand(3, 2, 2)
>>> parents = {"Z": torch.zeros(3, 1)}
>>> noise, log_p = m.abduct(picture, parents)
>>> bool(torch.equal(m.assign(parents, noise), picture)), log_p.shape
(True, torch.Size([3]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .. import levels
from ..errors import MechanismError
from ..image_model import BlockOrder, Encoding, ImageModelAdapter, factor_matrix
from ..uniforms import uniforms_later
from .base import Abduction
from .image import BernoulliImage, FactorProposal, LatentProposal, image_parents, once_per_run

if TYPE_CHECKING:
    from .latent_refinement import LaplaceFit

__all__ = ["DiscretisedLogisticImage", "discretised_logistic_image", "LogisticNoise"]

#: ``pixel_levels``: parent values -> ``(loc, log_scale)``, each float ``[S, *shape]`` (in the
#: decoder's own order ``[S, *blocks.shape]`` when the mechanism is given one, :class:`BlockOrder`).
Levels = Callable[[Mapping[str, Tensor]], tuple[Tensor, Tensor]]


class LogisticNoise(torch.distributions.Distribution):
    """Standard logistic noise ``[S, *shape]``, one per pixel and channel
    (:func:`cvaeq.levels.sample_noise`), as one event per particle."""

    arg_constraints: dict = {}
    support = torch.distributions.constraints.real

    def __init__(self, num_particles: int, shape: tuple[int, ...]) -> None:
        self.shape_ = (num_particles, *shape)
        super().__init__(torch.Size([num_particles]), torch.Size(shape), validate_args=False)

    def sample(self, sample_shape=torch.Size()) -> Tensor:
        return levels.sample_noise((*sample_shape, *self.shape_))

    def log_prob(self, value: Tensor) -> Tensor:
        # log f(e) = -|e| - 2 log(1 + exp(-|e|)), summed over a picture
        a = value.abs()
        return (-a - 2 * torch.log1p(torch.exp(-a))).flatten(value.dim() - len(self.event_shape)).sum(-1)


class DiscretisedLogisticImage:
    """8-bit pixels: the level whose bin holds ``loc + exp(log_scale) * eps``, ``eps ~ Logistic(0, 1)``.

    :param parents: parent names: the factors (in ``factors`` order) and the latent.
    :param pixel_levels: ``pixel_levels(parents) -> (loc, log_scale)``, each
        float ``[S, *shape]``, ``loc`` on the [0, 1] scale of pixel values.
    :param factor_logits: optional q(factors | X): ``x -> {factor: logits [S, size]}``
        (``x`` float in [0, 1]).
    :param z_posterior: optional q(Z | X, factors): ``(x, classes [S, F]) -> (loc, scale)``.
    :param factors: the factor parents, in the column order of ``classes``
        (default: the parents other than ``latent``).
    :param latent: the latent parent's name (``None`` if the image has none).
    :param shape: the world's ``image_shape``: ``(C, H, W)`` or ``(H, W)``.
    :param refine_latent: refine q(Z | X, factors) for each evidence picture
        (:mod:`~cvaeq.mechanisms.latent_refinement`); False: q as the model gives it.
    :param blocks: the order ``pixel_levels`` gives the pixel-channels in
        (:class:`~cvaeq.image_model.BlockOrder`, an 8-bit decoder's own, where it has
        :class:`~cvaeq.image_model.LevelBlocks`); None: the picture's. The per-pixel arithmetic
        and the noise are in that order; pictures go in and come out in the picture's.

    :meth:`abduct` gives the noise and ``log p(X | parents)`` from one
    decoding (the contract of :mod:`cvaeq.mechanisms.base`);
    :meth:`abduct_noise` and :meth:`log_prob` give each alone (each decodes).
    """

    intervenable = False
    pixel = "8bit"

    def __init__(
        self,
        parents: Sequence[str],
        pixel_levels: Levels,
        *,
        factor_logits: FactorProposal | None = None,
        z_posterior: LatentProposal | None = None,
        encoder: ImageModelAdapter | None = None,
        factors: Sequence[str] | None = None,
        latent: str | None = "Z",
        shape: tuple[int, ...] = (3, 64, 64),
        factor_normals: Callable[[Tensor], Mapping[str, tuple[Tensor, Tensor]]] | None = None,
        refine_latent: bool = True,
        blocks: BlockOrder | None = None,
    ) -> None:
        if not callable(pixel_levels):
            raise MechanismError("DiscretisedLogisticImage needs pixel_levels(parents) -> (loc, log_scale)")
        self.parents = tuple(parents)
        self.pixel_levels = pixel_levels
        #: the model's adapter: the proposals read the picture once through it (:meth:`propose`)
        self.encoder = encoder
        self.factor_logits = factor_logits if encoder is None else encoder.factor_logits
        self.z_posterior = z_posterior if encoder is None else encoder.z_posterior
        #: q(continuous factors | X) (:meth:`BernoulliImage.propose` draws continuous unknowns from it)
        self.factor_normals = factor_normals if encoder is None else getattr(encoder.model, "factor_normals", None)
        self.factors = tuple(factors) if factors is not None else tuple(p for p in self.parents if p != latent)
        self.latent = latent
        self.shape = tuple(int(v) for v in shape)
        self.event_dim = len(self.shape)
        #: whether the latent proposal is refined for each evidence picture (:meth:`_latent_draw`)
        self.refine_latent = refine_latent
        #: the decoder's order of the pixel-channels, or None (the picture's)
        self.blocks = blocks
        from .latent_refinement import FitCache

        #: the Laplace fits of the pictures asked about lately (:meth:`_cached_fit`)
        self.fits = FitCache()
        #: one picture's shape in the order of :attr:`pixel_levels` (and of the noise)
        self.noise_shape = self.shape if blocks is None else blocks.shape

    def __repr__(self) -> str:
        return f"DiscretisedLogisticImage(parents={self.parents}, shape={self.shape})"

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        return LogisticNoise(num_particles, self.noise_shape)

    def _in_order(self, value: Tensor) -> Tensor:
        """The picture's levels, checked (:func:`_levels_of`), in :attr:`pixel_levels`' order."""
        x = _levels_of(value, self.shape)
        return x if self.blocks is None else self.blocks.to(x)

    def _evidence_levels(self, x: Tensor) -> Tensor:
        """The one evidence picture the proposals read on the [0, 1] scale (its first row), as its
        levels again, exactly, in :attr:`pixel_levels`' order: what the Laplace fits are fitted to."""
        return self._in_order(x[:1].mul(levels.LEVELS - 1).round_().to(torch.uint8))

    def params(self, parents: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(loc, log_scale)`` of every pixel and channel for the parents' values,
        decoded once per run of consecutive particles with identical parents
        (a resampled particle's copies are consecutive, and so are the
        counterfactual worlds of one heavy particle: :func:`~cvaeq.mechanisms.image.once_per_run`)."""
        return once_per_run(self.pixel_levels, parents, self.parents)

    def _drawer(self, value: Tensor, parents: Mapping[str, Tensor]) -> _Drawer:
        """The bins of the picture under every particle (:meth:`_bins`), and the draw of their noise,
        its uniforms filled in the background while the particles are decoded and weighed
        (:func:`cvaeq.uniforms.uniforms_later`)."""
        batch = [int(value.shape[0])] if value.dim() > len(self.shape) else []
        num = max([*batch, *(int(v.shape[0]) for v in parents.values() if v.dim()), 1])
        later = uniforms_later((num, *self.noise_shape), self.encoder.pixel_dtype if self.encoder else torch.float32)
        return _Drawer(self._bins(value, parents), later)

    def _bins(self, value: Tensor, parents: Mapping[str, Tensor]) -> levels.Bins:
        """The bins of the picture's levels under every particle's decoding: one decoding of all the
        particles, then the pixel arithmetic a row chunk at a time (:func:`cvaeq.levels.row_chunks`).
        (Decoding a chunk at a time too was slower: the decoder's weights are read again for each.)"""
        loc, log_scale = self.params(parents)
        return levels.Bins.of(self._in_order(value), loc, log_scale)

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        loc, log_scale = self.params(parents)
        x = levels.quantise(loc, log_scale, noise)
        return x if self.blocks is None else self.blocks.back(x)

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """``log p(X = value | parents)`` ``[S]`` (float64), the sum over pixels and channels."""
        loc, log_scale = self.params(parents)
        return _summed(levels.log_prob(self._in_order(value), loc, log_scale))

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
        """``(noise, log p(X = value | parents))`` from one decoding: the noise
        from its exact posterior ``p(eps | X = value, parents)``, and the
        particles' importance weight (``[S]``, float64)."""
        draw = self._drawer(value, parents)
        return Abduction(draw(), draw.bins.row_sums())

    def weigh(self, value: Tensor, parents: Mapping[str, Tensor]) -> tuple[Tensor, Callable[[Tensor | None], Tensor]]:
        """:meth:`abduct` in two steps: ``(log p(X = value | parents) [S], draw)``,
        where ``draw(rows)`` gives the noise of the particles ``rows`` (every
        particle when None; each row its own draw from the exact posterior).

        The engine weighs the particles first and draws the pixel noise after
        resampling, for the copies it keeps (:func:`cvaeq.engine.abduct`): one
        draw of the 12,288 noises of a 64×64×3 picture per particle instead of
        one before resampling and one again to rejuvenate the copies. The
        same numbers as :meth:`abduct`'s for the same uniforms."""
        draw = self._drawer(value, parents)
        return draw.bins.row_sums(), draw

    def abduct_noise(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """The noise alone (rejuvenation: the weight is not needed there)."""
        return self.abduct(value, parents).noise

    def propose(
        self, value: Tensor, unknown: Sequence[str], known: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], Tensor] | None:
        """Sample the unknown parents from q(factors | X), then Z from q(Z | X, factors)
        refined for this picture (:meth:`_latent_draw`), reading the picture on the
        [0, 1] scale (the Bernoulli mechanism's proposal code, :meth:`BernoulliImage.propose`)."""
        x = unit_scale(value)
        joint = self._joint_proposal(x, tuple(unknown), known)
        if joint is not None:
            return joint
        return BernoulliImage.propose(self, x, unknown, known)  # type: ignore[arg-type]

    def _joint_proposal(
        self, x: Tensor, unknown: tuple[str, ...], known: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], Tensor] | None:
        """The unknown continuous factors and Z drawn together from q refined for one evidence
        picture, or None where that does not apply (the amortised draw of :meth:`BernoulliImage.propose`
        then, refined in Z alone by :meth:`_latent_draw`).

        For one picture whose unknowns are Z, continuous factors and perhaps categorical ones:
        for each of the likeliest categorical combinations under q, ``(c, z)`` is fitted jointly
        (:meth:`_combination_fits`) to ``log p(X | factors, z) + log N(c; q's mean, (w q's sd)^2)
        + log N(z; 0, I)``; each row draws its combination from ``DEFENSIVE q + (1 - DEFENSIVE) r``
        (``r``: the fits' Laplace evidence, :func:`~cvaeq.mechanisms.latent_refinement.refined_choice`)
        and ``(c, z)`` from ``DEFENSIVE q(c | X) q(z | X, c) + (1 - DEFENSIVE) Laplace``
        (:func:`~cvaeq.mechanisms.latent_refinement.draw_joint`); its weight divides by both densities.
        """
        from . import latent_refinement as lr

        if not self._joint_applies(x, unknown):
            return None
        num = x.shape[0]
        enc = self._encoding(x)
        found = self._joint_unknowns(enc, unknown, known)
        if found is None:
            return None
        cats, cont, grid, log_q_cat, c_loc, c_scale = found
        cols = [self.factors.index(f) for f in cont]

        def matrix(chosen: Tensor) -> Tensor:
            """The factors ``[S, F]`` with the categorical unknowns at ``grid[chosen]``, the
            continuous ones at q's means."""
            values = {f: grid[chosen, j] for j, f in enumerate(cats)}
            values.update({f: c_loc[i].expand(num) for i, f in enumerate(cont)})
            return factor_matrix({**known, **values}, self.factors, num)

        top = log_q_cat.argsort(descending=True, stable=True)[: lr.MAX_COMBINATIONS]
        fits = self._combination_fits(
            enc, x, [matrix(torch.full((num,), m)) for m in top.tolist()], cols, c_loc, c_scale
        )
        if fits is None:
            return None
        log_q_cat = lr.refined_choice(log_q_cat, top, fits)
        chosen = torch.multinomial(log_q_cat.exp(), num, replacement=True)
        position = torch.full((len(grid),), len(fits), dtype=torch.long)  # the combinations without a fit
        position[top] = torch.arange(len(top))
        base = matrix(chosen)

        def z_given(c: Tensor) -> tuple[Tensor, Tensor]:
            classes = base.clone()
            classes[:, cols] = c
            return enc.z_posterior(classes)

        c, z, lq = lr.draw_joint(c_loc, c_scale, z_given, [*fits, None], position[chosen])
        out: dict[str, Tensor] = {f: grid[chosen, j] for j, f in enumerate(cats)}
        out.update({f: c[:, i] for i, f in enumerate(cont)})
        out[self.latent] = z  # type: ignore[index]
        return out, log_q_cat[chosen] + lq

    def _encoding(self, x: Tensor) -> Encoding:
        """The picture read once for the three proposals (:class:`~cvaeq.image_model.Encoding`)."""
        if self.encoder is not None:
            return self.encoder.encode(x.float())
        return Encoding(
            x.float(),
            factor_logits=self.factor_logits,
            z_posterior=self.z_posterior,
            factor_normals=self.factor_normals,
        )

    def _joint_unknowns(self, enc: Encoding, unknown: tuple[str, ...], known: Mapping[str, Tensor]):
        """``(categorical unknowns, continuous unknowns, their combinations [M, k], log q of each [M],
        q's continuous means [c], sds [c])`` for :meth:`_joint_proposal`, or None where it does
        not apply (no continuous unknown, or more than
        :data:`~cvaeq.mechanisms.latent_refinement.MAX_CONTINUOUS`; evidence differing between
        particles; too many combinations)."""
        from . import latent_refinement as lr

        logits = enc.factor_logits()
        cont = [f for f in self.factors if f in unknown and f not in logits]
        if not cont or len(cont) > lr.MAX_CONTINUOUS:
            return None
        normals = enc.factor_normals()
        if any(f not in normals for f in cont):
            return None
        cats = [f for f in self.factors if f in unknown and f not in cont]
        for f in self.factors:
            if f not in cats and f not in cont and known.get(f) is None:
                raise MechanismError(f"q(Z | X, factors) needs {f!r}, which is neither known nor proposed")
        if any(_varies(known[f]) for f in self.factors if f in known and known[f] is not None):
            return None  # evidence that differs between particles: the amortised draw
        grid, log_q_cat = _combinations(logits, cats)
        if grid is None:
            return None  # too many categorical combinations to weigh
        c_loc = torch.stack([normals[f][0].double().reshape(-1)[0] for f in cont])
        c_scale = torch.stack([normals[f][1].double().reshape(-1)[0].exp() for f in cont])
        return cats, cont, grid, log_q_cat, c_loc, c_scale

    def _joint_applies(self, x: Tensor, unknown: tuple[str, ...]) -> bool:
        """Whether :meth:`_joint_proposal` may apply: the refinement on, one picture in every row,
        Z unknown, the model's three proposals present, and every unknown a parent of X."""
        return (
            self.refine_latent
            and (x.shape[0] == 1 or x.stride(0) == 0)
            and self.latent is not None
            and self.latent in unknown
            and self.factor_normals is not None
            and self.z_posterior is not None
            and self.factor_logits is not None
            and all(u in self.factors or u == self.latent for u in unknown)
        )

    def _combination_fits(
        self, enc: Encoding, x: Tensor, rows: list[Tensor], cols: list[int], c_loc: Tensor, c_scale: Tensor
    ) -> list | None:
        """The joint Laplace fit of ``(continuous factors, Z)`` for each factor matrix of ``rows``
        (every row of one the same combination), started at q's means; None when Z is too large
        to refine (:data:`~cvaeq.mechanisms.latent_refinement.MAX_LATENT_DIM`)."""
        from . import latent_refinement as lr

        picture = self._evidence_levels(x)
        fits: list[lr.LaplaceFit | None] = []
        for matrix in rows:
            z_loc, z_scale = enc.z_posterior(matrix)  # q(Z | X, factors) at q's continuous means
            if not 0 < z_loc.shape[1] <= lr.MAX_LATENT_DIM:
                return None
            key = ("joint", lr.tensor_key(picture, matrix[0], c_loc, c_scale, z_loc[0], z_scale[0]), tuple(cols))
            target = self._joint_log_posterior(picture, matrix[0], cols, c_loc, c_scale, z_loc.dtype)
            start = torch.cat([c_loc, z_loc[0].double()]), torch.cat([c_scale, z_scale[0].double()])
            fits.append(self._cached_fit(key, partial(self._fit, target, *start)))
        return fits

    def _cached_fit(self, key: tuple, make: Callable[[], LaplaceFit | None]) -> LaplaceFit | None:
        """``make()``, a Laplace fit, or the one made before for the same ``key`` and the image model's
        weights as they stand (:class:`~cvaeq.mechanisms.latent_refinement.FitCache`; not kept for a
        model whose weights cannot be told apart, :meth:`~cvaeq.image_model.ImageModelAdapter.weights_state`)."""
        weights = None if self.encoder is None else self.encoder.weights_state()
        return self.fits.get(None if weights is None else (weights, key), make)

    def _fit(self, log_density: Callable[[Tensor], Tensor], loc: Tensor, scale: Tensor):
        """:func:`~cvaeq.mechanisms.latent_refinement.laplace_fit` of ``log_density``: on the
        stencil up to :data:`~cvaeq.mechanisms.latent_refinement.STENCIL_MAX_DIM` dimensions,
        above with autograd's derivatives when the decoder is differentiable (a torch
        module's), else the stencil again."""
        from . import latent_refinement as lr

        if loc.shape[0] > lr.STENCIL_MAX_DIM:
            try:
                return lr.laplace_fit(log_density, loc, scale, derivatives=lr.autograd_derivatives(log_density))
            except (lr.NotDifferentiable, RuntimeError):
                pass  # a decoder outside autograd (numpy, a no-grad block): the stencil
        return lr.laplace_fit(log_density, loc, scale)

    def _joint_log_posterior(
        self, picture: Tensor, row: Tensor, cols: list[int], c_loc: Tensor, c_scale: Tensor, z_dtype: torch.dtype
    ) -> Callable[[Tensor], Tensor]:
        """``(c, z) [n, k + d] -> log p(picture | factors, z) + log N(c; c_loc, (w c_scale)^2) + log N(z; 0, I)``
        ``[n]`` (float64, up to a constant; ``w`` the widening of q): the target of the joint fit,
        the factors ``row`` with the continuous columns ``cols`` set to ``c`` (one decoding of ``n`` rows)."""
        from . import latent_refinement as lr

        k = len(cols)

        def log_density(points: Tensor) -> Tensor:
            points = points.double()
            n = points.shape[0]
            c, z = points[:, :k], points[:, k:].to(z_dtype)
            classes = row.expand(n, -1).clone()
            classes[:, cols] = c
            parents = {f: classes[:, j] for j, f in enumerate(self.factors)}
            parents[self.latent] = z  # type: ignore[index]
            loc, log_scale = self.pixel_levels(parents)
            if points.requires_grad:
                _differentiable(loc, log_scale)
            log_p = _summed(levels.log_prob(picture, loc, log_scale))  # differentiable (autograd's fit)
            prior_c = -0.5 * ((c - c_loc) / (lr.FACTOR_PRIOR_WIDTH * c_scale)).square().sum(1)
            return log_p + prior_c - 0.5 * z.double().square().sum(1)

        return log_density

    def _latent_draw(self, value: Tensor, classes: Tensor, loc: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        """Z from q(Z | X, factors) refined around the posterior's mode for one evidence picture
        (:mod:`~cvaeq.mechanisms.latent_refinement`: a Laplace fit per factor combination, with ``q``
        as a defensive component, its density exact in the weights); ``q`` alone when
        :attr:`refine_latent` is off, when the rows hold different pictures (a batch of evidence),
        or when Z has more than :data:`~cvaeq.mechanisms.latent_refinement.MAX_LATENT_DIM` dimensions."""
        from . import latent_refinement as lr

        one = value.shape[0] == 1 or value.stride(0) == 0
        if not self.refine_latent or not one or self.latent is None or not 0 < loc.shape[1] <= lr.MAX_LATENT_DIM:
            return BernoulliImage._latent_draw(self, value, classes, loc, scale)  # type: ignore[arg-type]
        picture = self._evidence_levels(value)
        combos, group, counts = torch.unique(classes, dim=0, return_inverse=True, return_counts=True)
        fits: list[lr.LaplaceFit | None] = [None] * len(combos)
        for k in counts.argsort(descending=True, stable=True)[: lr.MAX_COMBINATIONS].tolist():
            first = int((group == k).nonzero()[0, 0])
            key = ("z", lr.tensor_key(picture, combos[k], loc[first], scale[first]))
            target = self._log_posterior(picture, combos[k], loc.dtype)
            fits[k] = self._cached_fit(key, partial(self._fit, target, loc[first], scale[first]))
        return lr.draw(loc, scale, fits, group)

    def _log_posterior(
        self, picture: Tensor, classes: Tensor, z_dtype: torch.dtype = torch.float32
    ) -> Callable[[Tensor], Tensor]:
        """``z [n, d] -> log p(picture | classes, z) + log N(z; 0, I)`` ``[n]`` (float64):
        the target the latent proposal is fitted to (one decoding of ``n`` rows; ``z`` is
        handed to the decoder as ``z_dtype``)."""

        def log_density(z: Tensor) -> Tensor:
            n = z.shape[0]
            z = z.to(z_dtype)
            parents = {f: classes[j].expand(n) for j, f in enumerate(self.factors)}
            parents[self.latent] = z  # type: ignore[index]
            loc, log_scale = self.pixel_levels(parents)
            if z.requires_grad:  # autograd's fit: the differentiable form of the same numbers
                _differentiable(loc, log_scale)
                log_p = _summed(levels.log_prob(picture, loc, log_scale))
            else:
                log_p = levels.Bins.of(picture, loc, log_scale).row_sums()
            return log_p - 0.5 * z.double().square().sum(1)

        return log_density


class _Drawer:
    """``draw(rows=None)``: the noise of the particles ``rows`` (every particle when None) from their
    bins, the first time at the uniforms filled in the background (where they fit: one per
    particle and pixel-channel, in the bins' precision), after that at new ones."""

    def __init__(self, bins: levels.Bins, later: Callable[[], Tensor]) -> None:
        self.bins = bins
        self._later: Callable[[], Tensor] | None = later

    def __call__(self, rows: Tensor | None = None) -> Tensor:
        later, self._later = self._later, None  # the background uniforms serve one draw
        r = None if later is None else later()
        num = self.bins.a.shape[0] if rows is None else int(rows.shape[0])
        if r is not None and (r.dtype != self.bins.mass.dtype or r.shape[0] != num):
            r = None  # the bins draw their own
        return self.bins.draw(r, rows=rows)


def _varies(value: Tensor) -> bool:
    """Whether a known value differs between particles."""
    flat = value.reshape(value.shape[0], -1) if value.dim() > 0 else value.reshape(1, 1)
    return flat.shape[0] > 1 and flat.stride(0) != 0 and not bool((flat == flat[:1]).all())


def _combinations(logits: Mapping[str, Tensor], cats: Sequence[str]) -> tuple[Tensor | None, Tensor]:
    """Every combination of the categorical unknowns ``cats`` (``[M, len(cats)]`` classes, the
    first factor slowest) and its log-probability under q(factors | X) ``[M]`` (float64; the
    factors independent given the picture, as q draws them); ``(None, ...)`` past
    :data:`~cvaeq.mechanisms.latent_refinement.MAX_ENUMERATED` combinations."""
    from . import latent_refinement as lr

    sizes = [int(logits[f].shape[-1]) for f in cats]
    if math.prod(sizes) > lr.MAX_ENUMERATED:
        return None, torch.zeros(0, dtype=torch.float64)
    grid = torch.zeros(1, 0, dtype=torch.long)
    log_q = torch.zeros(1, dtype=torch.float64)
    for f, n in zip(cats, sizes):
        lp = torch.log_softmax(logits[f].reshape(-1, n)[0].double(), -1)
        grid = torch.cat([grid.repeat_interleave(n, 0), torch.arange(n).repeat(len(grid))[:, None]], 1)
        log_q = (log_q[:, None] + lp[None, :]).reshape(-1)
    return grid, log_q


def _differentiable(loc: Tensor, log_scale: Tensor) -> None:
    """Raise :class:`~cvaeq.mechanisms.latent_refinement.NotDifferentiable` when the decoder's
    answer carries no gradient (a decoder outside autograd): the prior terms alone would
    otherwise give autograd's fit a gradient without the picture in it."""
    from .latent_refinement import NotDifferentiable

    if not (loc.requires_grad or log_scale.requires_grad):
        raise NotDifferentiable("the decoder's answer has no gradient")


def unit_scale(value: Tensor) -> Tensor:
    """Levels as float in [0, 1]; one picture expanded over particles stays
    expanded (converted once, and the proposals see it is one picture)."""
    if value.dim() > 1 and value.shape[0] > 1 and value.stride(0) == 0:
        return levels.to_unit(value[:1]).expand(value.shape)
    return levels.to_unit(value)


def _levels_of(value: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The picture's levels, checked: uint8 (or whole numbers 0..255) of the image shape.
    One picture expanded over particles is handed on as that one picture (it broadcasts)."""
    if tuple(value.shape[-len(shape) :]) != shape:
        raise MechanismError(f"an 8-bit picture of shape {tuple(value.shape)}; the world's pictures are {shape}")
    if value.dim() > len(shape) and value.shape[0] > 1 and value.stride(0) == 0:
        value = value[:1]
    if value.dtype != torch.uint8:
        if value.is_floating_point() and not bool((value == value.round()).all()):
            raise MechanismError(
                "an 8-bit picture holds whole levels 0..255, not fractions; give uint8 levels (cvaeq.levels)"
            )
        if bool(((value < 0) | (value > 255)).any()):
            raise MechanismError("an 8-bit picture holds levels 0..255")
        value = value.to(torch.uint8)
    return value


def _summed(per_pixel: Tensor) -> Tensor:
    return per_pixel.flatten(1).sum(-1, dtype=torch.float64)


def discretised_logistic_image(
    image_model=None,
    *,
    pixel_levels: Levels | None = None,
    parents: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
    latent: str | None = "Z",
    shape: tuple[int, ...] = (3, 64, 64),
) -> DiscretisedLogisticImage:
    """Factory of the ``discretised_logistic`` image mechanism.

    Either an 8-bit image model (``pixel_levels(classes, z) -> (loc,
    log_scale)``, ``factor_logits(x)``, ``z_posterior(x, classes)``,
    ``latent_dim``), or a bare ``pixel_levels(parents)`` callable (no
    proposals). ``factors`` default to the parents other than ``latent``.
    A plugin's model has its answers checked (shapes, no NaN) where they enter.
    """
    if (image_model is None) == (pixel_levels is None):
        raise MechanismError(
            "discretised_logistic_image needs an 8-bit image model or a pixel_levels function, one of them"
        )
    factors, parents = image_parents(
        factors, parents, latent, "discretised_logistic_image needs its factors or its parents"
    )
    shape = tuple(int(v) for v in shape)
    if pixel_levels is not None:
        return DiscretisedLogisticImage(parents, pixel_levels, factors=factors, latent=latent, shape=shape)
    return _of_model(image_model, parents, factors, latent, shape)


def _of_model(
    image_model, parents: tuple[str, ...], factors: tuple[str, ...], latent: str | None, shape: tuple[int, ...]
) -> DiscretisedLogisticImage:
    """The mechanism of an 8-bit image model, called through its adapter (:mod:`cvaeq.image_model`)."""
    if not parents:
        raise MechanismError("an 8-bit image model's mechanism needs parents: the factors and the latent")
    if getattr(image_model, "pixel", "binary") != "8bit":
        raise MechanismError(
            "the discretised_logistic image mechanism needs an 8-bit image model "
            '(pixel = "8bit", pixel_levels(classes, z))'
        )
    from .checked import is_builtin

    # the adapter decides the decoder path and checks the required members (cvaeq.image_model)
    model = image_model if isinstance(image_model, ImageModelAdapter) else ImageModelAdapter(image_model, shape)
    inner = image_model.model if isinstance(image_model, ImageModelAdapter) else image_model
    inner = getattr(inner, "inner", inner)  # the plugin's own model behind the adapter's checks
    checked = not is_builtin(inner)
    decode = model.decode_blocks  # in the decoder's own order where it has one (cvaeq.image_model.LevelBlocks)
    first = parents[0]
    blocks = shape if model.blocks is None else model.blocks.shape

    def levels_of(ps: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        num = ps[first].shape[0]
        classes = factor_matrix(ps, factors, num) if factors else torch.zeros(num, 0, dtype=torch.long)
        z = ps[latent] if latent else torch.zeros(num, model.latent_dim)
        out = decode(classes, z)
        if checked:
            _check_levels(inner, out, (num, *blocks), "pixel_levels" if model.blocks is None else "level_blocks")
        return out

    return DiscretisedLogisticImage(
        parents, levels_of, encoder=model, factors=factors, latent=latent, shape=shape, blocks=model.blocks
    )


def _check_levels(model, out, expected: tuple[int, ...], member: str = "pixel_levels") -> None:
    """A plugin model's ``(loc, log_scale)`` from ``member``: two float tensors of the pictures'
    shape (in the decoder's order for ``level_blocks``), no NaN."""
    from ..errors import plugin_error
    from .checked import _who_made

    ok = isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)
    if not ok or any(tuple(t.shape) != expected or not t.is_floating_point() for t in out):
        raise plugin_error(_who_made(model), f"{member}() must return (loc, log_scale), each float {list(expected)}")
    # a sum is NaN when any value is (one pass; +inf and -inf together also give NaN, and are as wrong)
    if any(bool(torch.isnan(t.sum())) for t in out):
        raise plugin_error(_who_made(model), f"{member}() returned NaN")
