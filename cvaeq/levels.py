"""8-bit pixels as a discretised logistic, with exact abduction of the noise.

A decoder gives each pixel and channel a location ``loc`` (on the [0, 1]
scale of pixel values) and a ``log_scale``. The pixel's mechanism is

    level = the bin of  loc + exp(log_scale) * eps,   eps ~ Logistic(0, 1),

where the 256 bins are cut at ``(k - 0.5) / 255`` for k = 1..255 and the end
bins run to minus and plus infinity (so a decoder may put mass on pure black
and pure white, as PixelCNN++ does: Salimans et al. 2017, eq. 2). This is the
discretised logistic likelihood of PixelCNN++ and of the VDVAE/HVAE line of
causal-gen (whose ``DGaussNet`` discretises a Gaussian the same way); it is the
Bernoulli rule ``pixel = [u < p]`` generalised from two bins to 256.

Why a logistic and not a Gaussian: its CDF is the sigmoid, so both the bin
probabilities and the inverse CDF are closed-form and cheap, and the tails can
be computed in log space without special functions. Why it makes abduction
exact: the posterior of ``eps`` given an observed level is the standard
logistic truncated to that level's bin, ``[(lo - loc) / s, (hi - loc) / s)``,
and :func:`abduct` samples it exactly (by inverting the CDF inside the bin).
The counterfactual level replays the same ``eps`` under the new ``loc`` and
``log_scale``; a null intervention gives back the evidence byte for byte,
because :func:`quantise` and :func:`abduct` decide membership with the same
float arithmetic (:func:`standardised_edges`).

Everything here is elementwise and broadcasts: ``levels``, ``loc``,
``log_scale`` and ``eps`` may have any shapes that broadcast together.

>>> import torch
>>> levels = torch.tensor([0, 17, 128, 255], dtype=torch.uint8)
>>> loc, log_scale = torch.tensor([0.0, 0.07, 0.5, 0.98]), torch.full((4,), -4.0)
>>> eps, logp = abduct(levels, loc, log_scale, torch.rand(4, generator=torch.Generator().manual_seed(0)))
>>> bool(torch.equal(quantise(loc, log_scale, eps), levels))
True
>>> bool(torch.allclose(logp, log_prob(levels, loc, log_scale)))
True
>>> round(float(log_prob(levels, loc, log_scale).exp().sum(-1) > 0), 1)
1.0
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

__all__ = [
    "LEVELS",
    "edges",
    "standardised_edges",
    "log_prob",
    "quantise",
    "abduct",
    "sample_noise",
    "mean_unit",
    "bits_per_dim",
    "to_unit",
]

LEVELS = 256
"""Pixel values 0..255."""


def edges(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The 257 bin edges on the [0, 1] scale: ``-inf, 0.5/255, ..., 254.5/255, +inf``.

    Level ``v`` occupies ``[edges[v], edges[v + 1])``.

    >>> e = edges(torch.float64)
    >>> e.shape, float(e[1] * 255), float(e[-2] * 255)
    (torch.Size([257]), 0.5, 254.5)
    """
    inner = (torch.arange(1, LEVELS, dtype=torch.float64) - 0.5) / (LEVELS - 1)
    inf = torch.tensor([math.inf], dtype=torch.float64)
    return torch.cat([-inf, inner, inf]).to(dtype=dtype, device=device)


def to_unit(levels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Levels 0..255 as values in [0, 1] (the scale ``loc`` lives on)."""
    return levels.to(dtype) / (LEVELS - 1)


def standardised_edges(levels: Tensor, loc: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """The bin of each level in noise units: ``((lo - loc) / s, (hi - loc) / s)``.

    The one place the arithmetic of membership is written, so that sampling a
    level (:func:`quantise`) and abducting its noise (:func:`abduct`) agree to
    the last bit. The end bins give ``-inf`` and ``+inf``.
    """
    table = edges(loc.dtype, loc.device)
    idx = levels.long()
    scale = log_scale.exp()
    lo = (table[idx] - loc) / scale
    hi = (table[idx + 1] - loc) / scale
    return lo, hi


def _log_mass(a: Tensor, b: Tensor) -> Tensor:
    """``log(sigmoid(b) - sigmoid(a))`` for ``a <= b``, accurate in both tails.

    Upper-tail intervals are reflected (``sigmoid(b) - sigmoid(a) =
    sigmoid(-a) - sigmoid(-b)``) so that the two terms are never both near 1.
    """
    upper = (a + b) > 0
    a2 = torch.where(upper, -b, a)
    b2 = torch.where(upper, -a, b)
    la, lb = logsigmoid(a2), logsigmoid(b2)
    # log(e^lb - e^la) = lb + log(1 - e^(la - lb)); la <= lb, and la = -inf gives lb.
    diff = (la - lb).clamp(max=0.0)
    return lb + torch.log(-torch.expm1(diff))


def log_prob(levels: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """Log-probability of each level (natural log), elementwise.

    >>> import torch
    >>> loc, ls = torch.tensor(0.3), torch.tensor(-2.0)
    >>> p = log_prob(torch.arange(256), loc, ls).exp()
    >>> abs(float(p.sum()) - 1.0) < 1e-5
    True
    """
    a, b = standardised_edges(levels, loc, log_scale)
    return _log_mass(a, b)


def quantise(loc: Tensor, log_scale: Tensor, eps: Tensor) -> Tensor:
    """The level whose bin holds ``eps`` under ``(loc, log_scale)``: the mechanism, forward.

    A first guess from ``loc + s * eps`` is corrected by one step each way
    against :func:`standardised_edges`, so membership is decided by exactly
    the arithmetic :func:`abduct` uses.
    """
    shape = torch.broadcast_shapes(loc.shape, log_scale.shape, eps.shape)
    loc, log_scale, eps = loc.expand(shape), log_scale.expand(shape), eps.expand(shape)
    x = loc + log_scale.exp() * eps
    guess = torch.floor(x.clamp(-1.0, 2.0) * (LEVELS - 1) + 0.5).clamp(0, LEVELS - 1).long()
    for _ in range(2):  # rounding moves the guess at most one bin
        lo, hi = standardised_edges(guess, loc, log_scale)
        guess = guess - (eps < lo).long() + (eps >= hi).long()
        guess = guess.clamp(0, LEVELS - 1)
    return guess.to(torch.uint8)


def abduct(levels: Tensor, loc: Tensor, log_scale: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
    """Noise drawn from its exact posterior given the observed levels, and the levels' log-probability.

    ``r`` are uniforms in [0, 1) (one per pixel and channel); the noise is the
    standard logistic's inverse CDF at ``r`` of the way through the level's
    bin. The result lies in the bin by construction (it is clamped to the
    bin's float edges, which only ever moves it by rounding), so
    ``quantise(loc, log_scale, eps) == levels`` exactly. Returned together
    with ``log_prob(levels, loc, log_scale)``: the importance weight of the
    particle, computed once.
    """
    a, b = standardised_edges(levels, loc, log_scale)
    shape = torch.broadcast_shapes(a.shape, r.shape)
    a, b, r = a.expand(shape), b.expand(shape), r.expand(shape)
    upper = (a + b) > 0
    a2, b2 = torch.where(upper, -b, a), torch.where(upper, -a, b)
    r = torch.where(upper, 1.0 - r, r).to(a.dtype)
    la, lb = logsigmoid(a2), logsigmoid(b2)
    # p = (1 - r) sigmoid(a) + r sigmoid(b), in log space (p <= 1/2 after reflection unless the bin is wide)
    log_p = torch.logaddexp(torch.log1p(-r) + la, torch.log(r) + lb)
    eps = log_p - torch.log(-torch.expm1(log_p))  # logit(p)
    eps = torch.where(upper, -eps, eps)
    below_hi = torch.nextafter(b, torch.full_like(b, -math.inf))
    eps = torch.minimum(torch.maximum(eps, a), torch.maximum(below_hi, a))
    return eps, lb + torch.log(-torch.expm1((la - lb).clamp(max=0.0)))


def mean_unit(loc: Tensor, log_scale: Tensor) -> Tensor:
    """The mean level of each pixel and channel, on the [0, 1] scale (mean level / 255).

    ``E[level] = sum_{k=1}^{255} P(level >= k)``, and ``P(level >= k)`` is the
    logistic's upper tail at bin ``k``'s lower edge: a closed form, no sampling.

    >>> import torch
    >>> round(float(mean_unit(torch.tensor(0.5), torch.tensor(-3.0))), 4)
    0.5
    """
    inner = edges(loc.dtype, loc.device)[1:-1]  # the 255 lower edges of levels 1..255
    z = (loc.unsqueeze(-1) - inner) * torch.exp(-log_scale).unsqueeze(-1)
    return torch.sigmoid(z).sum(-1) / (LEVELS - 1)


def sample_noise(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """Standard logistic noise, ``logit(u)`` for ``u`` uniform: the prior of every pixel's noise."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    u = u.clamp(min=tiny)
    return (torch.log(u) - torch.log1p(-u)).to(dtype)


def bits_per_dim(nats: float | Tensor, dims: int) -> float | Tensor:
    """A negative log-likelihood in nats per picture as bits per dimension (per pixel and channel).

    The unit the literature reports 8-bit likelihoods in (PixelCNN++,
    DeepSCM), so cvaeq's figures compare with theirs.

    >>> round(bits_per_dim(64 * 64 * 3 * math.log(2), 64 * 64 * 3), 6)
    1.0
    """
    return nats / (dims * math.log(2))
