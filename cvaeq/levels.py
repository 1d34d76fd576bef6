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
``log_scale`` and ``eps`` may have any shapes that broadcast together. Only
:func:`log_prob` (the likelihood training differentiates) carries gradients;
the edges, the bins, the noise and the replay are computed without them
(``torch.no_grad``), in place, over row chunks (:func:`row_chunks`).

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

from .uniforms import uniforms

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


@torch.no_grad()
def standardised_edges(levels: Tensor, loc: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """The bin of each level in noise units: ``((lo - loc) / s, (hi - loc) / s)``.

    The arithmetic of membership, so that sampling a level (:func:`quantise`,
    which repeats these very operations on the edge it checks, over the same
    row chunks, :func:`row_chunks`) and abducting its noise (:func:`abduct`)
    agree to the last bit (a test checks every edge). The end bins give
    ``-inf`` and ``+inf``.
    """
    shape = _broadcast(levels.shape, loc.shape, log_scale.shape)
    a, b = torch.empty(shape, dtype=loc.dtype), torch.empty(shape, dtype=loc.dtype)
    lo, hi = _edge_tables(levels, loc)
    chunks = row_chunks(shape)
    if len(chunks) == 1:
        _edges_into(lo, hi, loc, log_scale, a, b)
    else:
        for i, j in chunks:
            lo_, hi_, loc_, log_scale_ = (_part(t, i, j, shape) for t in (lo, hi, loc, log_scale))
            _edges_into(lo_, hi_, loc_, log_scale_, a[i:j], b[i:j])
    return a, b


def _broadcast(*shapes: torch.Size | tuple[int, ...]) -> torch.Size:
    """``torch.broadcast_shapes`` in a few Python steps (torch's takes 0.1 ms a call, and an
    image question makes dozens); shapes that do not broadcast get torch's error.

    >>> _broadcast((1, 4), (3, 1, 4), (4,))
    torch.Size([3, 1, 4])
    """
    out = [1] * max(len(s) for s in shapes)
    for s in shapes:
        for i, v in enumerate(s, len(out) - len(s)):
            if v != 1 and out[i] != v:
                if out[i] != 1:
                    return torch.broadcast_shapes(*shapes)  # raises: they do not broadcast
                out[i] = v
    return torch.Size(out)


def _edge_tables(levels: Tensor, loc: Tensor) -> tuple[Tensor, Tensor]:
    """The lower and upper edge of each level's bin on the [0, 1] scale (as ``levels``' shape)."""
    table = edges(loc.dtype, loc.device)
    idx = levels.long()
    return table[idx], table[idx + 1]


def _edges_into(lo: Tensor, hi: Tensor, loc: Tensor, log_scale: Tensor, a: Tensor, b: Tensor) -> None:
    """``a = (lo - loc) / s`` and ``b = (hi - loc) / s`` into ``a`` and ``b`` (one row chunk)."""
    scale = log_scale.exp()
    torch.sub(lo.expand(a.shape), loc, out=a).div_(scale)
    torch.sub(hi.expand(b.shape), loc, out=b).div_(scale)


#: Values each pass of the per-pixel arithmetic works on at once (:func:`row_chunks`): 2^18, 1 MB
#: of float32. The temporaries of the bins, the noise and the replay (a dozen per pass) are then
#: a chunk's size, not a question's: 100 particles of a 64×64×3 picture are 4.9 MB a value, 1,000
#: are 49 MB (that colour counterfactual with 1,000 particles peaked 399 MB above the warm process,
#: against 621 MB in one chunk). Time is the same either way: with 100 particles a median of 47.0
#: ms with 2^18, 46.7 ms in one chunk and 54.2 ms with 2^16 (2 threads, interleaved in one
#: process, 20 asks each, 2026-12-07).
CHUNK = 1 << 18


def row_chunks(shape: tuple[int, ...] | torch.Size) -> list[tuple[int, int]]:
    """Row ranges ``(i, j)`` of the first dimension of ``shape``, each of about :data:`CHUNK` values.

    Every function here that computes a scale from a log-scale cuts its rows the
    same way, so that a scale is computed in the same place of the same
    operation wherever membership is decided (the tail of a torch vectorised
    loop may be computed otherwise than its body: float32 ``sigmoid``'s tail
    differs in the last bit in torch 2.13, ``exp``'s, ``log``'s and ``expm1``'s do
    not, and nothing promises that they will not). Each chunk but
    the last holds a multiple of 64 values where the row length allows, so that
    no vectorised loop, whole or halved among two threads, has a tail.

    >>> row_chunks((100, 3, 64, 64))[:2], len(row_chunks((100, 3, 64, 64)))
    ([(0, 21), (21, 42)], 5)
    >>> row_chunks((4, 5))
    [(0, 4)]
    """
    if len(shape) < 2 or shape[0] <= 1:
        return [(0, shape[0] if shape else 1)]
    per_row = max(1, math.prod(shape[1:]))
    step = 64 // math.gcd(per_row, 64)  # rows whose values are a multiple of 64
    k = max(step, CHUNK // per_row // step * step)
    return [(i, min(i + k, shape[0])) for i in range(0, shape[0], k)]


def _part(t: Tensor, i: int, j: int, shape: tuple[int, ...] | torch.Size) -> Tensor:
    """Rows ``i:j`` of ``t`` as a part of the broadcast ``shape`` (``t`` whole where it broadcasts)."""
    if t.dim() == len(shape) and t.shape[0] != 1:
        return t[i:j]
    return t


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


@torch.no_grad()
def quantise(loc: Tensor, log_scale: Tensor, eps: Tensor) -> Tensor:
    """The level whose bin holds ``eps`` under ``(loc, log_scale)``: the mechanism, forward.

    Computed over row chunks (:func:`row_chunks`), each as :func:`_quantise` says.
    """
    shape = _broadcast(loc.shape, log_scale.shape, eps.shape)
    chunks = row_chunks(shape)
    out = torch.empty(shape, dtype=torch.uint8)
    if len(chunks) == 1:
        _quantise(loc, log_scale, eps, out)
    else:
        for i, j in chunks:
            loc_, log_scale_, eps_ = (_part(t, i, j, shape) for t in (loc, log_scale, eps))
            _quantise(loc_, log_scale_, eps_, out[i:j])
    return out


def _quantise(loc: Tensor, log_scale: Tensor, eps: Tensor, out: Tensor) -> None:
    """:func:`quantise` of one row chunk, into the uint8 ``out``.

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
    shape = _broadcast(loc.shape, log_scale.shape, eps.shape)
    # the scale from the log-scale as given, then broadcast, as standardised_edges computes it (a
    # loop's tail may round otherwise than its body, row_chunks; membership is decided to the bit)
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
        edge = m.sub(0.5).div_(top).sub_(loc).div_(scale)
        # 1.0 where eps lies below the edge, else 0.0, subtracted (a comparison into a float and the
        # subtraction are two vectorised passes; into a bool, then torch.where, took five times as long)
        m.sub_(torch.lt(eps, edge, out=edge))
        out.copy_(m.clamp_(0, top))  # whole numbers 0..255, exactly as uint8
        return
    # the bin of the guess on the unbounded grid of bins of width 1/255 (levels below 0 and above 255
    # are the end bins' parts; the pixel value kept within [-1, 2] keeps them whole numbers)
    guess = value.mul_(top).add_(0.5).floor_()
    # the guessed bin's edges in noise units, as standardised_edges computes them: one pass over all
    lo = guess.sub(0.5).div_(top).sub_(loc).div_(scale)
    hi = guess.add(0.5).div_(top).sub_(loc).div_(scale)
    down, up = eps < lo, eps >= hi
    if not bool(down.any()) and not bool(up.any()):
        out.copy_(guess.clamp_(0, top))
        return
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
    out.copy_(guess)


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

    Computed, and drawn from, over row chunks (:func:`row_chunks`): the same
    numbers as one pass over everything, with temporaries a chunk's size.

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

    __slots__ = ("a", "b", "mass", "log_p", "far", "sums")

    @torch.no_grad()
    def __init__(self, a: Tensor, b: Tensor) -> None:
        self._buffers(a, b)
        for i, j in self._chunks():
            self._terms(i, j)
        self._far_log_p()

    @classmethod
    def of(cls, levels: Tensor, loc: Tensor, log_scale: Tensor, shape: torch.Size | None = None) -> Bins:
        """The bins of ``levels`` under ``(loc, log_scale)`` (broadcast to ``shape`` when given):
        :func:`standardised_edges` and ``Bins`` of them, each row chunk's edges and terms computed
        together (while in cache)."""
        shape = _broadcast(levels.shape, loc.shape, log_scale.shape, *([shape] if shape else []))
        bins = cls._empty(shape, loc.dtype)
        # one picture's edges serve every chunk (looked up once), and so do its inner levels' places
        # (:meth:`_terms`); a level per row: each chunk looks up its own, and every place is inner
        shared = _part(levels, 0, 1, shape) is levels
        tables = _edge_tables(levels, loc) if shared else None
        inner = _inner_places(levels, shape) if shared and len(shape) >= 2 else None
        for i, j in bins._chunks():
            parts = (loc, log_scale) if j is None else (_part(loc, i, j, shape), _part(log_scale, i, j, shape))
            bins._fill(i, j, levels, *parts, tables=tables, inner=inner)
        bins._far_log_p()
        return bins

    @classmethod
    def _empty(cls, shape: torch.Size | tuple[int, ...], dtype: torch.dtype) -> Bins:
        """Bins of ``shape``, to be filled a row chunk at a time (:meth:`_fill`)."""
        bins = cls.__new__(cls)
        bins._buffers(torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype))
        return bins

    def _buffers(self, a: Tensor, b: Tensor) -> None:
        """The bins ``[a, b)`` and the buffers their terms are computed into."""
        #: the bins, the uniform's scale in the inverse CDF (``L``), and each level's log-probability
        self.a, self.b = a, b
        self.mass, self.log_p = torch.empty(a.shape, dtype=a.dtype), torch.empty(a.shape, dtype=a.dtype)
        #: the far bins (log-space form) as a mask, or None when there are none
        self.far: Tensor | None = None
        #: each row's summed log-probability (float64, over all but the first dimension), summed
        #: chunk by chunk (None for bins of fewer than two dimensions: :meth:`row_sums` then sums)
        self.sums = torch.empty(a.shape[0], dtype=torch.float64) if a.dim() >= 2 else None

    def row_sums(self) -> Tensor:
        """Each row's log-probability summed over all but the first dimension, float64: a
        particle's importance weight."""
        return self.sums if self.sums is not None else self.log_p.reshape(self.log_p.shape[:1]).double()

    @torch.no_grad()
    def _fill(
        self,
        i: int,
        j: int | None,
        levels: Tensor,
        loc: Tensor,
        log_scale: Tensor,
        tables: tuple[Tensor, Tensor] | None = None,
        inner: Tensor | None = None,
    ) -> None:
        """The bins of rows ``i:j`` (every row when ``j`` is None): ``levels`` of all rows (or one
        picture for all, its edges ``tables`` when already looked up and the places of its inner
        levels ``inner``, :meth:`_terms`), ``loc`` and ``log_scale`` of those rows; edges and terms
        together, while the chunk is in cache."""
        if tables is None:
            tables = _edge_tables(levels if j is None else _part(levels, i, j, self.a.shape), loc)
        lo, hi = tables
        _edges_into(lo, hi, loc, log_scale, *((self.a, self.b) if j is None else (self.a[i:j], self.b[i:j])))
        self._terms(i, j, inner)

    def _chunks(self) -> list[tuple[int, int | None]]:
        """:func:`row_chunks` of the bins, ``[(0, None)]`` (everything, unsliced) when there is one."""
        chunks = row_chunks(self.a.shape)
        return [(0, None)] if len(chunks) == 1 else list(chunks)

    def _terms(self, i: int, j: int | None, inner: Tensor | None = None) -> None:
        """``L`` and log p of the bins of rows ``i:j`` (every row when ``j`` is None), and which are far.

        ``inner``: where every row's level is known to lie within 1..254 and elsewhere to be 0 or 255
        (one picture's places, :func:`_inner_places`), or None (every place may be inner). An end
        bin has ``q = 1 - e^-(b - a)`` exactly 1 (``b - a`` is infinite, cut at ``TAIL``, whose
        ``expm1`` is exactly -1 in float32), so ``q`` is computed, and multiplied in, at the inner
        places alone: the same numbers, and a picture of mostly background (95% of the colour
        pendulum's pixel-channels are 255) skips the slowest pass (``expm1``) and four others."""
        a, b, mass, log_p = (t if j is None else t[i:j] for t in (self.a, self.b, self.mass, self.log_p))
        torch.neg(a, out=mass).clamp_(-TAIL, TAIL).sigmoid_()  # sigmoid(-a)
        if inner is None:
            mass.mul_(torch.sub(a, b).clamp_(min=-TAIL).expm1_().neg_())  # L = sigmoid(-a) q
        elif inner.numel():
            a2, b2, m2 = (t.reshape(t.shape[0], -1) for t in (a, b, mass))
            q = torch.sub(a2.index_select(1, inner), b2.index_select(1, inner)).clamp_(min=-TAIL).expm1_().neg_()
            m2.index_copy_(1, inner, m2.index_select(1, inner).mul_(q))
        # sigmoid(b) - sigmoid(a), computed where its log goes
        p = torch.clamp(b, -TAIL, TAIL, out=log_p).sigmoid_().mul_(mass)
        tiny = torch.finfo(p.dtype).tiny
        # three reductions decide whether any bin is far, without a pass that writes
        if a.numel() and (bool(b.min() <= -TAIL) or bool(a.max() >= TAIL) or bool(p.min() < tiny)):
            if self.far is None:
                self.far = torch.zeros(self.a.shape, dtype=torch.bool)
            far = self.far if j is None else self.far[i:j]
            torch.le(b, -TAIL, out=far).logical_or_(a >= TAIL).logical_or_(p < tiny)
        p.log_()  # a p below tiny (or 0) is a far bin's: its log p is made again (_far_log_p)
        if self.sums is not None:  # summed while in cache, in float64
            torch.sum(log_p.flatten(1), 1, dtype=torch.float64, out=self.sums if j is None else self.sums[i:j])

    def _far_log_p(self) -> None:
        """The far bins' log-probabilities, in the log-space form (and their rows' sums again)."""
        if self.far is not None:
            at = _flat_indices(self.far)
            a, b = self.a.reshape(-1).index_select(0, at), self.b.reshape(-1).index_select(0, at)
            self.log_p.view(-1).index_copy_(0, at, _log_mass_log_space(a, b))
            if self.sums is not None:
                hit = self.far.flatten(1).any(1).nonzero().squeeze(1)
                self.sums[hit] = self.log_p[hit].flatten(1).sum(1, dtype=torch.float64)

    @torch.no_grad()
    def draw(self, r: Tensor | None = None, rows: Tensor | None = None) -> Tensor:
        """Noise in every bin (of the rows ``rows`` of the first dimension, in
        that order, when given) at the uniforms ``r`` (drawn here when None:
        :func:`cvaeq.uniforms.uniforms`)."""
        num = self.a.shape[0] if rows is None else int(rows.shape[0])
        shape = (num, *self.a.shape[1:]) if self.a.dim() else self.a.shape
        if r is None:
            r = uniforms(shape, self.mass.dtype)
        r = r.to(self.mass.dtype)
        shape = _broadcast(shape, r.shape)
        eps = torch.empty(shape, dtype=self.mass.dtype)
        chunks = row_chunks(shape)
        whole = len(chunks) == 1
        for i, j in chunks:
            if rows is not None:  # a chunk of the rows asked for, gathered (while it is in cache)
                at = rows if whole else rows[i:j]
                mass, a, b = (t.index_select(0, at) for t in (self.mass, self.a, self.b))
                far = None if self.far is None else self.far.index_select(0, at)
            elif whole:
                mass, a, b, far = self.mass, self.a, self.b, self.far
            else:
                mass, a, b = (_part(t, i, j, shape) for t in (self.mass, self.a, self.b))
                far = None if self.far is None else _part(self.far, i, j, shape)
            _draw_into(mass, a, b, far, r if whole else _part(r, i, j, shape), eps if whole else eps[i:j])
        return eps


#: 1 as a tensor, for ``1 - x`` in one pass into a buffer (``torch.rsub`` takes no ``out``).
_ONE = torch.tensor(1.0)


def _draw_into(mass: Tensor, a: Tensor, b: Tensor, far: Tensor | None, r: Tensor, eps: Tensor) -> None:
    """:meth:`Bins.draw` of one row chunk, into ``eps``."""
    r_w = torch.mul(mass, r)
    top = b.clamp(-TAIL, _EXP_CUT).neg_().exp_().add_(r_w)  # e^-b + r L
    torch.sub(_ONE, r_w, out=eps).div_(top).log_()  # log((1 - r L) / (e^-b + r L))
    # into [a, b) as floats: only rounding puts it out; a bin empty in floats (a == b, a level of
    # probability 0) gets its top, outside: no particle can carry such a level. (The clamp of
    # the few values at or above b alone: torch's nextafter is a slow scalar loop.)
    torch.maximum(eps, a, out=eps)
    # which lie at or above b, as 1.0 in the spent r L (a float comparison and a max are two
    # vectorised passes; a bool mask and its any() took three times as long)
    over = torch.ge(eps, b, out=r_w)
    if over.numel() and bool(over.max() > 0):
        at = _flat_indices(over > 0)
        top_b = b.expand(eps.shape).reshape(-1).index_select(0, at)
        eps.view(-1).index_copy_(0, at, torch.nextafter(top_b, top_b.new_full((), -math.inf)))
    if far is not None and bool(far.any()):
        at = _flat_indices(far.expand(eps.shape))
        pick = [t.expand(eps.shape).reshape(-1).index_select(0, at) for t in (a, b, r)]
        eps.view(-1).index_copy_(0, at, _draw_log_space(*pick))


@torch.no_grad()
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
    shape = _broadcast(levels.shape, loc.shape, log_scale.shape, r.shape)
    bins = Bins.of(levels, loc, log_scale, shape)
    return bins.draw(r.expand(shape)), bins.log_p


def _inner_places(levels: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """The places (indices into a row of ``shape``, all but its first dimension flattened) where
    the one picture ``levels`` (broadcast over the rows) has a level within 1..254."""
    row = levels.expand(shape)[0].reshape(-1)
    return ((row > 0) & (row < LEVELS - 1)).nonzero().squeeze(1)


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
