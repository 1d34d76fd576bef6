"""The image X: Bernoulli pixels with uniform noise and exact abduction.

``X_j = 1[U_j < p_j(parents)]`` with ``U ~ Uniform(0, 1)^(H x W)`` and pixel
probabilities ``p`` from a decoder. Given an observed image, the noise posterior
is exact: ``U_j | X_j = 1 ~ U(0, p_j)`` and ``U_j | X_j = 0 ~ U(p_j, 1)``. The
counterfactual pixel is ``1[U_j < p'_j]``.

The mechanism may also carry amortised proposals, q(factors | X) and
q(Z | X, factors), that the engine uses to infer unobserved parents of an
observed image (importance sampling, weight = prior / proposal).

A trained model plugs in through the image-model seam (:mod:`cvaeq.image_model`:
the protocol and :class:`~cvaeq.image_model.ImageModelAdapter`, which decides
the decoder path); :func:`bernoulli_image` turns one into the mechanism.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MechanismError
from ..image_model import Encoding, ImageModel, ImageModelAdapter, consecutive_runs, factor_matrix, missing_members
from .base import Abduction

__all__ = ["ImageModel", "BernoulliImage", "bernoulli_image", "missing_members"]


#: float64 pixel arithmetic (``dtype=torch.float64``, what queries used before
#: 2026-12-07; kept for comparison): logits beyond this are taken as this for the
#: pixel noise (not the likelihood): ``sigmoid(30) = 1 - 9e-14`` leaves room for
#: float64 noise on both sides.
NOISE_LOGIT_BOUND = 30.0
#: float32 pixel arithmetic (the default): the noise's probabilities are kept in
#: ``[NOISE_PROB_FLOOR_FLOAT32, 1 - NOISE_PROB_FLOOR_FLOAT32]``, ``2^-23`` from 0
#: and from 1 (the logit bound ``log(2^23 - 1) = 15.94``). Why this value: the
#: float32 numbers below 1 are ``1 - k 2^-24``, so ``1 - 2^-23`` is the second
#: float below 1 and, written as a clamp on ``p`` itself rather than on the
#: logit, ``p < 1`` holds whatever a CPU's sigmoid kernel rounds to (with the
#: float64 path's bound of 30, float32's ``sigmoid`` rounds to exactly 1 beyond a
#: logit of ~16.6, and an off pixel would have no noise that replays it);
#: ``p >= 2^-23 > 0`` likewise. Both noise intervals are then non-empty in
#: float32: ``[0, p)`` holds 0 and ``[p, 1)`` holds ``p`` (and ``1 - 2^-24``).
#: What it costs the model: a pixel's probability moves by at most ``2^-23 =
#: 1.2e-7``; a 64×64 image drawn from the prior gets a pixel the decoder would
#: not draw with probability at most ``4096 * 1.2e-7 = 4.9e-4`` (evaluation's
#: float32 bound before, 12, moved each by up to 6e-6, ``0.025`` per image).
NOISE_PROB_FLOOR_FLOAT32 = 2.0**-23
NOISE_LOGIT_BOUND_FLOAT32 = math.log(2.0**23 - 1)

Decode = Callable[[Mapping[str, Tensor]], Tensor]
FactorProposal = Callable[[Tensor], Mapping[str, Tensor]]
LatentProposal = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


class BernoulliImage:
    """Bernoulli pixels ``1[U < decode(parents)]`` with ``U ~ Uniform(0, 1)``.

    :param parents: parent names: the factors (in ``factors`` order) and the latent.
    :param decode: ``decode(parents) -> [S, H, W]`` pixel probabilities
        (may be None when ``logits`` is given).
    :param logits: optional ``logits(parents) -> [S, H, W]`` Bernoulli logits.
        When given, probabilities are ``sigmoid`` of them in ``dtype`` and the
        log-likelihood is ``x log σ(l) + (1 - x) log σ(-l)`` (for 0/1 pixels
        one ``log σ(±l)`` in the logits' own precision, summed in float64): finite where a
        float32 probability would round to 0 or 1 (a confident decoder has
        such pixels, and one wrong pixel would make an image impossible),
        and the abducted noise stays inside ``[0, p)`` or ``[p, 1)`` exactly
        (for the noise, and so for sampling, probabilities are kept
        ``NOISE_PROB_FLOOR_FLOAT32 = 2^-23`` from 0 and 1 in float32, a change
        below 1.2e-7; logits clamped to ``±NOISE_LOGIT_BOUND = ±30`` in float64).
    :param factor_logits: optional q(factors | X): ``x -> {factor: logits [S, size]}``.
    :param z_posterior: optional q(Z | X, factors): ``(x, classes [S, F]) -> (loc, scale)``.
    :param factor_normals: optional q(continuous factors | X): ``x -> {factor:
        (loc [S], log_scale [S])}``, a Normal in the factor's units (a world with
        continuous factors; the encoder's, when ``encoder`` is given).
    :param encoder: optional :class:`~cvaeq.image_model.ImageModelAdapter`
        whose ``encode`` reads an evidence image once for both proposals
        (instead of ``factor_logits`` and ``z_posterior``).
    :param factors: the factor parents, in the column order of ``classes``
        (default: the parents other than ``latent``).
    :param latent: the latent parent's name (``None`` if the image has none).
    :param shape: ``(H, W)`` of the image (the world's ``image_shape``).
    :param dtype: the precision of the pixel arithmetic from logits (noise,
        probabilities; and the likelihood of non-binary images): float32 (the
        default since 2026-12-07, what queries and evaluation use: the
        uniforms drawn and compared in float32, which takes about a tenth off
        an image counterfactual's engine time, benchmarks/pixel_dtype.py), or
        float64 (what queries used before; the same answers within Monte
        Carlo error, tests/mechanisms/test_pixel_precision.py). Either way the
        abducted noise replays the evidence exactly.
    """

    event_dim = 2
    intervenable = False

    def __init__(
        self,
        parents: Sequence[str],
        decode: Decode | None,
        *,
        logits: Decode | None = None,
        factor_logits: FactorProposal | None = None,
        z_posterior: LatentProposal | None = None,
        encoder: ImageModelAdapter | None = None,
        factors: Sequence[str] | None = None,
        latent: str | None = "Z",
        shape: tuple[int, int] = (64, 64),
        dtype: torch.dtype = torch.float32,
        factor_normals: Callable[[Tensor], Mapping[str, tuple[Tensor, Tensor]]] | None = None,
    ) -> None:
        if dtype not in (torch.float64, torch.float32):
            raise MechanismError(f"BernoulliImage computes pixels in float64 or float32, not {dtype}")
        self.dtype = dtype
        if decode is None and logits is None:
            raise MechanismError("BernoulliImage needs decode (pixel probabilities) or logits")
        self.parents = tuple(parents)
        self.logits = logits
        self.decode: Decode = decode if logits is None else (lambda ps: self._probs_of(logits(ps)))  # type: ignore[assignment]  # one of the two is given (bernoulli_image checks)
        self.encoder = encoder
        self.factor_logits = factor_logits if encoder is None else encoder.model.factor_logits
        self.z_posterior = z_posterior if encoder is None else encoder.model.z_posterior
        self.factor_normals = factor_normals if encoder is None else getattr(encoder.model, "factor_normals", None)
        self.factors = tuple(factors) if factors is not None else tuple(p for p in self.parents if p != latent)
        self.latent = latent
        self.shape = tuple(shape)

    def __repr__(self) -> str:
        return f"BernoulliImage(parents={self.parents}, shape={self.shape})"

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        zero = torch.zeros(())
        return dist.Uniform(zero, zero + 1).expand((num_particles, *self.shape)).to_event(2)

    def probs(self, parents: Mapping[str, Tensor]) -> Tensor:
        """Pixel probabilities ``[S, H, W]`` for the parents' values (in
        ``dtype``, kept off 0 and 1, when computed from logits)."""
        return self._once_per_run(self.decode, parents)

    def _raw(self, parents: Mapping[str, Tensor]) -> Tensor:
        """What the network gives: logits if the mechanism has them, else probabilities."""
        fn: Decode = self.logits if self.logits is not None else self.decode
        return self._once_per_run(fn, parents)

    def _once_per_run(self, fn: Decode, parents: Mapping[str, Tensor]) -> Tensor:
        return once_per_run(fn, parents, self.parents)

    def _probs_of(self, raw: Tensor) -> Tensor:
        """Probabilities for the noise, from logits, kept off 0 and 1 so that
        ``[0, p)`` and ``[p, 1)`` both hold values of ``dtype`` (float32's
        ``sigmoid(17)`` and float64's ``sigmoid(45)`` round to exactly 1, and an
        off pixel the decoder is that sure of would have no noise to replay
        it): in float32 ``p`` itself is clamped to ``[2^-23, 1 - 2^-23]``
        (``NOISE_PROB_FLOOR_FLOAT32``, argued there), in float64 the logits
        to ``±NOISE_LOGIT_BOUND``."""
        if self.logits is None:
            return raw
        p = raw.to(self.dtype, copy=True)  # a copy of its own: worked on in place below
        if self.dtype == torch.float32:
            return p.sigmoid_().clamp_(NOISE_PROB_FLOOR_FLOAT32, 1.0 - NOISE_PROB_FLOOR_FLOAT32)
        return p.clamp_(-NOISE_LOGIT_BOUND, NOISE_LOGIT_BOUND).sigmoid_()

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        dtype = noise.dtype if self.logits is None else torch.get_default_dtype()
        return (noise < self.probs(parents)).to(dtype)

    def log_prob(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """``log p(X = value | parents)`` ``[S]`` (float64)."""
        return self._log_lik(value, self._raw(parents))

    def _log_lik(self, value: Tensor, raw: Tensor) -> Tensor:
        """The likelihood of ``value`` from the network's output ``raw`` (:meth:`_raw`)."""
        lp_dtype = torch.promote_types(raw.dtype, torch.float32)  # the logits' precision, at least float32
        sign = _binary_sign(value, lp_dtype) if self.logits is not None else None
        if sign is not None:
            # x log σ(l) + (1 - x) log σ(-l) is log σ(±l) for a 0/1 pixel, and so,
            # to the bit, one log-sigmoid per pixel instead of two (the costliest
            # step of an image query). In the logits' own precision (float32: a
            # relative error of 1e-7 per pixel, summed in float64; three times
            # faster than in float64, and finite wherever float64 is)
            lp = F.logsigmoid(raw.to(lp_dtype) * sign)
        else:
            raw, x = raw.to(self.dtype), value.to(self.dtype)
            if self.logits is not None:
                lp = x * F.logsigmoid(raw) + (1 - x) * F.logsigmoid(-raw)
            else:
                lp = torch.xlogy(x, raw) + torch.xlogy(1 - x, 1 - raw)
        return lp.flatten(1).sum(-1, dtype=torch.float64)

    def abduct(self, value: Tensor, parents: Mapping[str, Tensor]) -> Abduction:
        """``U | X`` (uniform below ``p`` where a pixel is on, above it where
        off) and ``log p(X | parents)``, from one decoding of the parents."""
        raw = self._raw(parents)
        return Abduction(self._noise(value, raw), self._log_lik(value, raw))

    def abduct_noise(self, value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
        """The noise of :meth:`abduct` alone (no likelihood computed)."""
        return self._noise(value, self._raw(parents))

    def _noise(self, value: Tensor, raw: Tensor) -> Tensor:
        """A sample of ``U | X = value`` given the network's output ``raw``."""
        p = self._probs_of(raw) if self.logits is not None else raw.float()
        v = torch.rand(p.shape, dtype=p.dtype)
        one, zero = torch.ones((), dtype=p.dtype), torch.zeros((), dtype=p.dtype)
        # above = min(p + (1 - p) v, 1⁻) where off, below = min(p v, p⁻) where on:
        # above computed in place everywhere, below only at the pixels that are on
        # (a few in a hundred), the same numbers as computing both everywhere
        u = torch.sub(1, p).mul_(v).add_(p).clamp_(max=torch.nextafter(one, zero))
        s = p.shape[0] if p.dim() > 2 else 1
        if value.dim() > 2 and value.shape[0] == s > 1 and value.stride(0) == 0:
            # one evidence image expanded over the particles: the same pixels of every row
            cols = (value[0] > 0.5).flatten().nonzero().squeeze(1)
            pf, vf = p.reshape(s, -1)[:, cols], v.reshape(s, -1)[:, cols]
            u.view(s, -1)[:, cols] = torch.minimum(pf * vf, torch.nextafter(pf, zero))
        else:  # by flat index, found once (a boolean mask would look for the pixels three times)
            at = (value > 0.5).expand(p.shape).flatten().nonzero().squeeze(1)
            pf, vf = p.reshape(-1).index_select(0, at), v.reshape(-1).index_select(0, at)
            u.view(-1).index_copy_(0, at, torch.minimum(pf * vf, torch.nextafter(pf, zero)))
        return u

    def propose(
        self, value: Tensor, unknown: Sequence[str], known: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], Tensor] | None:
        """Sample the unknown parents from q(factors | X), then q(Z | X, factors).

        A categorical factor is drawn from its ``factor_logits``; a continuous
        one (a world with continuous factors) from the Normal of the model's
        ``factor_normals(x)``, ``loc + exp(log_scale) * eps`` in float64, its
        exact log-density in ``log_q``. Returns ``(values, log_q)``, or
        ``None`` when this mechanism has no proposal for some unknown parent
        (the engine then uses the prior).
        """
        unknown = tuple(unknown)
        need_factors = [f for f in self.factors if f in unknown]
        if need_factors and self.factor_logits is None:
            return None
        if self.latent in unknown and self.z_posterior is None:
            return None
        if any(u not in self.factors and u != self.latent for u in unknown):
            return None
        num = value.shape[0]
        x = value.float()
        # the images read once (each run of identical ones), handed from q(factors | X) to q(Z | X, factors)
        enc = (
            self.encoder.encode(x)
            if self.encoder is not None
            else Encoding(
                x, factor_logits=self.factor_logits, z_posterior=self.z_posterior, factor_normals=self.factor_normals
            )
        )
        log_q = torch.zeros(num, dtype=torch.float64)
        out: dict[str, Tensor] = {}
        if need_factors:
            logits = enc.factor_logits()
            normals = enc.factor_normals() if any(f not in logits for f in need_factors) else {}
            for f in need_factors:
                if f in logits:
                    out[f], lq = _categorical_draw(logits[f].expand(num, -1))
                elif f in normals:
                    out[f], lq = normal_draw(*normals[f], num, getattr(self, "bounds", {}).get(f))
                else:
                    raise MechanismError(
                        f"q(factors | X) gave no logits (nor, for a continuous factor, a normal) for {f!r}; "
                        "it must give every factor"
                    )
                log_q += lq
        if self.latent in unknown:
            for f in self.factors:
                if f not in out and known.get(f) is None:
                    raise MechanismError(f"q(Z | X, factors) needs {f!r}, which is neither known nor proposed")
            classes = factor_matrix({**known, **out}, self.factors, num)
            loc, scale = enc.z_posterior(classes)
            out[self.latent], lq = self._latent_draw(value, classes, loc, scale)
            log_q += lq
        return out, log_q

    def _latent_draw(self, value: Tensor, classes: Tensor, loc: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        """Z drawn from q(Z | X, factors) = Normal(loc, scale): ``(z [S, d], log q [S] float64)``.
        (The 8-bit mechanism refines it around the posterior's mode: :mod:`cvaeq.mechanisms.latent_refinement`.)"""
        q = dist.Normal(loc, scale).to_event(1)
        z = q.sample()
        return z, q.log_prob(z).double()


def image_parents(
    factors: Sequence[str] | None, parents: Sequence[str] | None, latent: str | None, missing: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An image mechanism's ``(factors, parents)`` from whichever is given: the
    factors default to the parents other than ``latent``, the parents to the
    factors and ``latent``; with neither, a MechanismError saying ``missing``."""
    if factors is None:
        if parents is None:
            raise MechanismError(missing)
        factors = tuple(p for p in parents if p != latent)
    factors = tuple(factors)
    if parents is None:
        parents = factors + ((latent,) if latent else ())
    return factors, tuple(parents)


def once_per_run(fn: Callable[[Mapping[str, Tensor]], Any], parents: Mapping[str, Tensor], names: Sequence[str]) -> Any:
    """``fn(parents)``, evaluated once per run of consecutive particles with
    identical values of the parents ``names`` (a resampled particle's copies
    are consecutive, and so are the counterfactual worlds of one heavy
    particle), and spread back to every particle; ``fn`` may give a tensor or
    a tuple of them (an 8-bit decoder's ``(loc, log_scale)``)."""
    cols = [parents[p].reshape(parents[p].shape[0], -1).double() for p in names if p in parents]
    if not cols or cols[0].shape[0] < 2:
        return fn(parents)
    new, run = consecutive_runs(torch.cat(cols, 1))
    if bool(new.all()):
        return fn(parents)
    out = fn({k: v[new] if k in names else v for k, v in parents.items()})
    return tuple(t[run] for t in out) if isinstance(out, tuple) else out[run]


def _categorical_draw(logits: Tensor) -> tuple[Tensor, Tensor]:
    """One class per row of ``logits [S, size]`` and its float64 log-probability:
    the very numbers of ``pyro.distributions.Categorical(logits=logits)``'s
    ``sample()`` and ``log_prob()`` (the same random draw, the same arithmetic),
    without building the distribution and checking its arguments, which took
    more time than the draw (~0.1 ms a factor, five per image query)."""
    norm = logits - logits.logsumexp(dim=-1, keepdim=True)
    k = torch.multinomial(F.softmax(norm, dim=-1), 1, True).T.reshape(logits.shape[:-1])
    return k, norm.gather(-1, k.unsqueeze(-1)).squeeze(-1).double()


def normal_draw(
    loc: Tensor, log_scale: Tensor, num: int, bounds: tuple[float, float] | None = None
) -> tuple[Tensor, Tensor]:
    """One value per particle from ``Normal(loc, exp(log_scale))`` (each ``[S]``, or one
    row expanded), in float64, and its exact log-density ``[S]`` float64.

    With ``bounds = (low, high)`` (a continuous factor's interval) the Normal is
    truncated to it: drawn by the inverse CDF between the bounds' probabilities,
    its density divided by the mass inside. A q that reads a picture at the edge
    of the interval (a digit at intensity 255) then never proposes a value the
    factor cannot take, which would weigh 0 (all of them: a picture the engine
    could not explain). Where the mass inside underflows, the draw is uniform on
    the interval, with that density.

    >>> v, lq = normal_draw(torch.tensor([257.0]), torch.tensor([-1.0]), 4, bounds=(0.0, 255.0))
    >>> bool((v <= 255).all()), bool(torch.isfinite(lq).all())
    (True, True)
    """
    loc = loc.double().reshape(-1).expand(num)
    log_scale = log_scale.double().reshape(-1).expand(num)
    if bounds is None:
        eps = torch.randn(num, dtype=torch.float64)
        value = loc + log_scale.exp() * eps
        return value, -0.5 * eps * eps - log_scale - 0.5 * math.log(2 * math.pi)
    scale = log_scale.exp()
    lo = torch.special.ndtr((bounds[0] - loc) / scale)
    hi = torch.special.ndtr((bounds[1] - loc) / scale)
    mass = hi - lo
    u = lo + mass * torch.rand(num, dtype=torch.float64)
    eps = torch.special.ndtri(u.clamp(1e-300, 1 - 1e-16))
    value = (loc + scale * eps).clamp(bounds[0], bounds[1])
    log_q = -0.5 * eps * eps - log_scale - 0.5 * math.log(2 * math.pi) - mass.clamp_min(1e-300).log()
    flat = mass < 1e-12  # the Normal's mass inside underflows: uniform on the interval
    if bool(flat.any()):
        width = bounds[1] - bounds[0]
        value = torch.where(flat, bounds[0] + width * torch.rand(num, dtype=torch.float64), value)
        log_q = torch.where(flat, torch.full_like(log_q, -math.log(width)), log_q)
    return value, log_q


def _binary_sign(value: Tensor, dtype: torch.dtype = torch.float64) -> Tensor | None:
    """``2 x - 1`` (``dtype``, ±1) of a 0/1 image batch ``x``, or None when some
    pixel is neither 0 nor 1. A batch that repeats one image (evidence expanded
    over particles, stride 0) is checked and converted once, and broadcasts."""
    one = value[:1] if value.dim() > 0 and value.shape[0] > 1 and value.stride(0) == 0 else value
    if not bool(((one == 0) | (one == 1)).all()):
        return None
    return one.to(dtype, copy=True).mul_(2).sub_(1)


def bernoulli_image(
    image_model: ImageModel | None = None,
    *,
    decode: Decode | None = None,
    parents: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
    latent: str | None = "Z",
    shape: tuple[int, int] = (64, 64),
) -> BernoulliImage:
    """Factory of the ``bernoulli_image`` family.

    Either an image model (:mod:`cvaeq.image_model`: the decoder and both
    proposals, called through :class:`~cvaeq.image_model.ImageModelAdapter`,
    which picks the decoder), or a bare ``decode(parents) -> probs``
    callable (no proposals). ``factors`` default to the parents other than
    ``latent``; ``shape`` is the image's ``(H, W)``.
    """
    if image_model is None and decode is None:
        raise MechanismError("bernoulli_image needs an image model or a decode function")
    model = None
    if image_model is not None:  # the adapter decides the decoder path, once (and checks the members)
        model = image_model if isinstance(image_model, ImageModelAdapter) else ImageModelAdapter(image_model, shape)
    factors, parents = image_parents(
        factors, parents, latent, "bernoulli_image needs its factors or its parents (the world's factor names)"
    )
    if model is not None:
        if decode is not None:
            raise MechanismError("give an image model or a decode function, not both")

        def decoded(ps: Mapping[str, Tensor]) -> Tensor:
            classes = factor_matrix(ps, factors)
            z = ps[latent] if latent else torch.zeros(classes.shape[0], model.latent_dim)
            return model.decode(classes, z)

        logits = decoded if model.decoder == "logits" else None
        return BernoulliImage(
            parents,
            None if logits else decoded,
            logits=logits,
            encoder=model,
            factors=factors,
            latent=latent,
            shape=shape,
            dtype=model.pixel_dtype,
        )
    if decode is None:
        raise MechanismError("bernoulli_image needs an image model or a decode function")
    return BernoulliImage(parents, decode, factors=factors, latent=latent, shape=shape)
