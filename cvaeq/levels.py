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
    "Bins",
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
    # in the dtype's own arithmetic, as :func:`quantise` computes an edge from a level
    inner = (torch.arange(1, LEVELS, dtype=dtype, device=device) - 0.5) / (LEVELS - 1)
    inf = torch.tensor([math.inf], dtype=dtype, device=device)
    return torch.cat([-inf, inner, inf])


def to_unit(levels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Levels 0..255 as values in [0, 1] (the scale ``loc`` lives on)."""
    return levels.to(dtype) / (LEVELS - 1)


def standardised_edges(levels: Tensor, loc: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """The bin of each level in noise units: ``((lo - loc) / s, (hi - loc) / s)``.

    The arithmetic of membership, so that sampling a level (:func:`quantise`,
    which repeats these very operations on the edge it checks) and abducting
    its noise (:func:`abduct`) agree to the last bit (a test checks every
    edge). The end bins give ``-inf`` and ``+inf``.
    """
    table = edges(loc.dtype, loc.device)
    idx = levels.long()
    scale = log_scale.exp()

    def over_scale(d: Tensor) -> Tensor:  # d / scale, in place when d has the result's shape
        return d.div_(scale) if d.shape == torch.broadcast_shapes(d.shape, scale.shape) else d / scale

    return over_scale(torch.sub(table[idx], loc)), over_scale(torch.sub(table[idx + 1], loc))


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
    # sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - e^(a - b)): no difference of two
    # probabilities, so nothing cancels in either tail or in a narrow bin. The end bins' outer
    # edges are infinite; they are kept out of the arithmetic (finite stand-ins, then the end
    # bins' own terms chosen), so that training gets finite gradients there too
    k = levels.long()
    top = LEVELS - 1
    lo_edge = (k.to(loc.dtype) - 0.5) / top
    scale = log_scale.exp()
    a = (lo_edge - loc) / scale
    b = (lo_edge + 1.0 / top - loc) / scale
    up, down = logsigmoid(b), logsigmoid(-a)  # log P(eps < b), log P(eps >= a)
    inner = up + down + torch.log(-torch.expm1(a - b))
    return torch.where(k == 0, up, torch.where(k == top, down, inner))


def quantise(loc: Tensor, log_scale: Tensor, eps: Tensor) -> Tensor:
    """The level whose bin holds ``eps`` under ``(loc, log_scale)``: the mechanism, forward.

    The pixel value ``loc + s * eps`` is rounded to its nearest bin edge, and
    ``eps`` compared with that edge in noise units, computed as
    :func:`standardised_edges` computes it (the edge ``(k - 0.5) / 255`` in
    the same float arithmetic), so membership is decided to the last bit as
    :func:`abduct` decides it: one edge per pixel, because rounding moves the
    value by far less than half a bin (:data:`NEAREST_EDGE_LOC`). For larger
    locations a guessed bin's two edges are checked, and the few guesses that
    rounding put off moved until right. (The end bins' outer edges are
    infinite: a level pushed past 0 or 255 is clamped back, which is the same.)
    """
    shape = torch.broadcast_shapes(loc.shape, log_scale.shape, eps.shape)
    # the scale from the log-scale as given, then broadcast, as standardised_edges computes it (exp's
    # vectorised and scalar kernels may differ in the last bit, and membership is decided to the bit)
    scale = log_scale.exp().expand(shape)
    loc, eps = loc.expand(shape), eps.to(loc.dtype).expand(shape)
    top = LEVELS - 1
    value = torch.addcmul(loc, scale, eps).nan_to_num_(nan=0.0).clamp_(-1.0, 2.0)  # loc + s * eps, unrounded
    low, high = torch.aminmax(loc)
    if max(-float(low), float(high)) <= NEAREST_EDGE_LOC:
        # The edge nearest to the value (edges at (m - 0.5) / 255, m whole) is the only one rounding can
        # put on the wrong side of it here, so it alone decides: level m if eps is at or above it, else
        # m - 1, the edge computed as standardised_edges computes it. (Values beyond [0, 255]: end bins.)
        m = value.mul_(top).add_(0.5).round_()
        above = eps >= m.sub(0.5).div_(top).sub_(loc).div_(scale)
        return m.sub_(1).add_(above).clamp_(0, top).to(torch.uint8)
    # the bin of the guess on the unbounded grid of bins of width 1/255 (levels below 0 and above 255
    # are the end bins' parts; the pixel value kept within [-1, 2] keeps them whole numbers)
    guess = value.mul_(top).add_(0.5).floor_()
    # the guessed bin's edges in noise units, as standardised_edges computes them: one pass over all
    lo = guess.sub(0.5).div_(top).sub_(loc).div_(scale)
    hi = guess.add(0.5).div_(top).sub_(loc).div_(scale)
    down, up = eps < lo, eps >= hi
    if not bool(down.any()) and not bool(up.any()):
        return guess.clamp_(0, top).to(torch.uint8)
    guess = guess.clamp_(0, top)  # the end bins reach to infinity: what is beyond is theirs
    # the few guesses that rounding put a bin off, and only those: moved and checked until right
    flat = [t.reshape(-1) for t in (loc, scale, eps)]
    g = guess.view(-1)
    at = _flat_indices(down.logical_or_(up))
    for _ in range(LEVELS):
        lo_, s_, e_ = (t.index_select(0, at) for t in flat)
        k = g.index_select(0, at)
        k = k + (e_ >= ((k + 0.5) / top - lo_) / s_).to(k.dtype) - (e_ < ((k - 0.5) / top - lo_) / s_).to(k.dtype)
        k = k.clamp_(0, top)  # the end bins reach to infinity
        g.index_copy_(0, at, k)
        off = (e_ < ((k - 0.5) / top - lo_) / s_) & (k > 0) | (e_ >= ((k + 0.5) / top - lo_) / s_) & (k < top)
        if not bool(off.any()):
            break
        at = at[off]
    return guess.to(torch.uint8)


#: :func:`quantise` decides a pixel by the one edge nearest its value while every ``|loc|`` is at most
#: this: the value ``loc + s * eps`` (kept within [-1, 2], so ``|s * eps| <= 258`` where it matters) is
#: then within ``4 * 2^-24 * 258 * 255 = 0.016`` of a bin of its exact place, and the float edges within
#: less than that of theirs, far below the half bin that would make another edge the deciding one.
NEAREST_EDGE_LOC = 256.0


def _flat_indices(mask: Tensor) -> Tensor:
    """The flat indices of a mask's few True elements: the rows (first dimension)
    holding any are found first, and only those searched (a full ``nonzero``
    reads and counts every element twice)."""
    rows = mask.reshape(mask.shape[0] if mask.dim() > 1 else 1, -1)
    hit = rows.any(1).nonzero().squeeze(1)
    r, c = rows.index_select(0, hit).nonzero().unbind(1)
    return hit.index_select(0, r) * rows.shape[1] + c


#: Bins within this many noise units of the logistic's centre (``b > -TAIL`` and
#: ``a < TAIL``) take :func:`abduct`'s closed form in the pixels' own precision;
#: the rest (levels the decoder gives less than ``e^-60``) the log-space form.
TAIL = 60.0

#: Where the closed form's ``e^-b`` is cut: ``e^-87`` is still a normal float32. Arguments
#: beyond the range where a float32 ``exp`` or ``sigmoid`` is finite and normal cost 10 to 80
#: times as much as others in torch's CPU kernels (a slow path per such element), and a
#: particle whose picture is far from the evidence has millions of them; so every argument is
#: clamped into that range first. :class:`Bins` argues why no value that matters changes.
_EXP_CUT = 87.0


class Bins:
    """The bins ``[a, b)`` (noise units) of observed levels, with what drawing their noise needs.

    Built once from the bin edges (:func:`standardised_edges`) of ``R`` decoded
    rows; :attr:`log_p` is each level's log-probability, and :meth:`draw` draws
    noise from the exact posterior (the standard logistic cut to the bin) for
    those rows, or for copies of them (``rows``: a resampled particle's copies
    each get their own noise, and the bins are computed once per original).
    This is :func:`abduct` in two steps, so that the engine can weigh the
    particles first and draw the pixel noise only for the particles that
    resampling keeps.

    The closed form (:func:`abduct`'s docstring) with its arguments clamped:
    ``sigmoid(-a)`` and ``sigmoid(b)`` with the arguments cut to ``[-TAIL,
    TAIL]`` (a sigmoid is exactly 1.0 in float32 from 17 on, and bins with
    ``b <= -TAIL`` or ``a >= TAIL`` take the log-space form, so no near bin's
    value changes); ``1 - e^(a - b)`` with ``a - b`` cut at ``-TAIL`` (``expm1``
    is exactly -1.0 from -17.4 down); ``e^-b`` with ``b`` cut to ``[-TAIL,
    87]``. The last is the one cut that can move a near bin's noise: where
    ``b > 87`` the closed form adds ``e^-87`` (1.6e-38) to ``r L``, which is at
    least ``2^-24 sigmoid(-60)`` (5e-34) for a near bin and a non-zero uniform:
    the noise moves by less than one part in 30,000 and only in bins of
    probability below ``e^-53``, and stays in its bin (clamped to it, as
    always). A bin's probability below the smallest normal float (1.2e-38,
    where the closed form's terms would be subnormal) also takes the log-space
    form.
    """

    __slots__ = ("a", "b", "mass", "log_p", "far")

    def __init__(self, a: Tensor, b: Tensor) -> None:
        q = torch.sub(a, b).clamp_(min=-TAIL).expm1_().neg_()  # 1 - e^-(b - a): 1 for an end bin
        mass = a.neg().clamp_(-TAIL, TAIL).sigmoid_().mul_(q)  # L = sigmoid(-a) q
        p = b.clamp(-TAIL, TAIL).sigmoid_().mul_(mass)  # sigmoid(b) - sigmoid(a)
        tiny = torch.finfo(p.dtype).tiny
        #: the uniform's scale in the inverse CDF (``L``), and the bins
        self.a, self.b, self.mass = a, b, mass
        #: the far bins (log-space form) as a mask, or None when there are none (three
        #: reductions decide that, without a pass that writes)
        self.far: Tensor | None = None
        if a.numel() and (bool(b.min() <= -TAIL) or bool(a.max() >= TAIL) or bool(p.min() < tiny)):
            self.far = (b <= -TAIL).logical_or_(a >= TAIL).logical_or_(p < tiny)
        self.log_p = p.clamp_(min=tiny).log_()
        if self.far is not None:
            at = _flat_indices(self.far)
            self.log_p.view(-1).index_copy_(
                0, at, _log_mass_log_space(a.reshape(-1).index_select(0, at), b.reshape(-1).index_select(0, at))
            )

    def draw(self, r: Tensor | None = None, rows: Tensor | None = None) -> Tensor:
        """Noise in every bin (of the rows ``rows`` of the first dimension, in
        that order, when given) at the uniforms ``r`` (drawn here when None)."""
        mass, a, b, far = self.mass, self.a, self.b, self.far
        if rows is not None:
            mass, a, b = (t.index_select(0, rows) for t in (mass, a, b))
            far = None if far is None else far.index_select(0, rows)
        if r is None:
            r = torch.rand(mass.shape, dtype=mass.dtype)
        r = r.to(mass.dtype)
        r_w = torch.mul(mass, r)
        top = b.clamp(-TAIL, _EXP_CUT).neg_().exp_().add_(r_w)  # e^-b + r L
        eps = torch.rsub(r_w, 1.0).div_(top).log_()  # log((1 - r L) / (e^-b + r L))
        # into [a, b) as floats: only rounding puts it out; a bin empty in floats (a == b, a level of
        # probability 0) gets its top, outside: no particle can carry such a level
        eps = torch.clamp(eps, min=a, max=torch.nextafter(b, b.new_full((), -math.inf)), out=eps)
        if far is not None:
            at = _flat_indices(far)
            pick = [t.reshape(-1).index_select(0, at) for t in (a, b, r)]
            eps.view(-1).index_copy_(0, at, _draw_log_space(*pick))
        return eps


def abduct(levels: Tensor, loc: Tensor, log_scale: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
    """Noise drawn from its exact posterior given the observed levels, and the levels' log-probability.

    ``r`` are uniforms in [0, 1) (one per pixel and channel); the noise is the
    standard logistic's inverse CDF at ``r`` of the way down the level's bin
    ``[a, b)`` from its top. Writing ``q = 1 - e^(a - b)`` and ``L = sigmoid(-a) q``,
    that inverse is ``eps = log(1 - r L) - log(e^-b + r L)`` (``r = 0`` gives
    ``b``, ``r = 1`` gives ``a``), and the bin's probability is
    ``sigmoid(b) - sigmoid(a) = sigmoid(b) L``: no difference of two
    probabilities, so nothing cancels, in either tail or in a narrow bin,
    and one pass of a few elementwise operations in float32 (a tenth of the
    time of the log-space form with its reflections). Its terms stay normal
    floats while the bin lies within :data:`TAIL` noise units of the centre;
    bins beyond (levels the decoder gives less than ``e^-60``: impossible
    particles, in practice) take the log-space form, exact at any distance.
    (:class:`Bins` does the work, with the arguments clamped where float32
    would leave its normal range.)

    The result lies in the bin by construction (it is clamped to the bin's
    float edges, which only ever moves it by rounding), so
    ``quantise(loc, log_scale, eps) == levels`` exactly. Returned together
    with ``log_prob(levels, loc, log_scale)``: the importance weight of the
    particle, computed once.
    """
    a, b = standardised_edges(levels, loc, log_scale)
    shape = torch.broadcast_shapes(a.shape, r.shape)
    bins = Bins(a.expand(shape), b.expand(shape))
    return bins.draw(r.expand(shape)), bins.log_p


def _log_mass_log_space(a: Tensor, b: Tensor) -> Tensor:
    """``log(sigmoid(b) - sigmoid(a))`` of bins ``[a, b)`` in noise units, in log space: exact however far out."""
    upper = (a + b) > 0
    a2, b2 = torch.where(upper, -b, a), torch.where(upper, -a, b)
    la, lb = logsigmoid(a2), logsigmoid(b2)
    return lb + torch.log(-torch.expm1((la - lb).clamp(max=0.0)))


def _draw_log_space(a: Tensor, b: Tensor, r: Tensor) -> Tensor:
    """:meth:`Bins.draw` for bins ``[a, b)`` given in noise units, in log space
    (the upper tail reflected onto the lower one): exact however far out."""
    upper = (a + b) > 0
    a2, b2 = torch.where(upper, -b, a), torch.where(upper, -a, b)
    r = torch.where(upper, 1.0 - r, r).to(a.dtype)
    la, lb = logsigmoid(a2), logsigmoid(b2)
    # p = (1 - r) sigmoid(a) + r sigmoid(b), in log space (p <= 1/2 after reflection unless the bin is wide)
    log_p = torch.logaddexp(torch.log1p(-r) + la, torch.log(r) + lb)
    eps = log_p - torch.log(-torch.expm1(log_p))  # logit(p)
    eps = torch.where(upper, -eps, eps)
    below_hi = torch.nextafter(b, torch.full_like(b, -math.inf))
    return torch.minimum(torch.maximum(eps, a), torch.maximum(below_hi, a))


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


def sample_noise(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
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
