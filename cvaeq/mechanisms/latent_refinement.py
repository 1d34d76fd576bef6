"""The latent proposal refined for one evidence picture: a Laplace fit around the posterior's mode.

An 8-bit picture's likelihood ``p(X | factors, Z)`` is a product over 12,288
pixel-channels of narrow discretised logistics, far more peaked in Z than the
amortised ``q(Z | X, factors)`` is sharp: drawn from ``q``, 100 particles of
the colour pendulum kept an effective sample size of 2 to 8. Given the
picture and the factors, the log-posterior of Z,

    f(z) = log p(X | factors, z) + log N(z; 0, I),

is smooth and, for a model that reads its pictures well, close to quadratic
around its mode. :func:`laplace_fit` finds the mode by Newton's method from
``q``'s mean, with the gradient and Hessian from central differences on a
stencil of ``2 d^2 + 1`` points (one batched decoding per step: no autograd,
so any model's decoder will do; above :data:`STENCIL_MAX_DIM` dimensions the
caller may hand exact derivatives from autograd instead,
:func:`autograd_derivatives`), in ``q``'s own units (``z = loc + scale * u``);
the proposal is then the Laplace approximation ``Normal(mode, (-H)^-1)`` (the
finite-difference Hessian at a step near the posterior's width: the curvature
averaged over where the mass is), mixed with ``q`` itself as a defensive
component (Hesterberg 1995: a weight can then never exceed ``1 / DEFENSIVE``
times what ``q`` alone would give it):

    q'(z) = DEFENSIVE q(z) + (1 - DEFENSIVE) Normal(z; mode, (-H)^-1).

Importance sampling stays exact: each particle's weight divides by
``q'(z)``, the density it was drawn from (:func:`draw`), so the answer is an
unbiased-in-the-limit self-normalised estimate whatever the fit's quality;
the fit only decides how many particles count. Where the fit fails (a
Hessian not negative definite, a non-finite likelihood) a factor combination
keeps ``q`` alone.

>>> import torch
>>> f = lambda z: -0.5 * (((z.double() - 3.0) / 0.1) ** 2).sum(1)     # a sharp posterior at (3, 3)
>>> fit = laplace_fit(f, torch.zeros(2), torch.ones(2))
>>> [round(v, 3) for v in fit.mean.tolist()], [round(v, 3) for v in fit.scale_tril.diagonal().tolist()]
([3.0, 3.0], [0.1, 0.1])
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "LaplaceFit",
    "FitCache",
    "tensor_key",
    "laplace_fit",
    "draw",
    "draw_joint",
    "MAX_CONTINUOUS",
    "MAX_ENUMERATED",
    "refined_choice",
    "STENCIL_MAX_DIM",
    "autograd_derivatives",
    "FACTOR_PRIOR_WIDTH",
    "DEFENSIVE",
    "MAX_LATENT_DIM",
    "MAX_COMBINATIONS",
    "NEWTON_STEPS",
    "NEWTON_DECREMENT",
]

#: The weight of ``q`` itself in the refined proposal (defensive importance sampling).
DEFENSIVE = 0.05
#: Latent sizes up to this are refined (the stencil has ``2 d^2 + 1`` points: 129 decodings at 8;
#: above :data:`STENCIL_MAX_DIM`, autograd's derivatives where the decoder allows, docs/engine.md).
MAX_LATENT_DIM = 16
#: Unknown continuous factors refined jointly with Z, at most (:func:`draw_joint`).
MAX_CONTINUOUS = 4
#: The joint proposal weighs the categorical unknowns' combinations (:func:`refined_choice`) up
#: to this many of them; past it the amortised draw.
MAX_ENUMERATED = 4096
#: The joint fit's stand-in prior for the continuous factors is q(c | X) widened this many times:
#: q already read the picture, so q itself as the prior would count the picture twice and pull
#: the fit narrow around q's guess (Morpho-MNIST digit 7001: ESS 208 of 1,000 with q itself, 364
#: at 2 and 3 times q's sd, 357 at 5, 350 with no prior at all; docs/engine.md); widened, it only
#: keeps Newton's search where q looked.
FACTOR_PRIOR_WIDTH = 3.0
#: The factor combinations refined, the most frequent first; rarer ones keep ``q`` (a proposal
#: per combination: each particle's weight uses the density its own combination drew it from).
MAX_COMBINATIONS = 4
#: Newton steps at most (the colour pendulum's mode is found in 3 or 4).
NEWTON_STEPS = 8
#: Stop after a Newton step shorter than this many posterior standard deviations (the Newton
#: decrement ``sqrt(step' (-H) step)``, in the fitted posterior's own metric).
NEWTON_DECREMENT = 0.5
#: The longest Newton step, in ``q``'s units (a trust region).
MAX_STEP = 4.0


@dataclass(frozen=True)
class LaplaceFit:
    """``Normal(mean, scale_tril scale_tril^T)`` in Z's units; ``evaluations``: stencils decoded;
    ``log_evidence``: Laplace's estimate of ``log ∫ exp(log_density)``, the peak plus
    ``log sqrt((2 pi)^d det cov)`` (what the joint proposal weighs factor combinations by)."""

    mean: Tensor
    scale_tril: Tensor
    evaluations: int
    log_evidence: float = math.nan


class FitCache:
    """The fits of the pictures asked about lately, so that asking about a picture again (another
    intervention on it in the explorer, another seed, another query in a notebook) skips its fits.

    A fit is a deterministic function of what its key holds (the picture, the factor combination,
    ``q``'s answer, the model's weights as they stand, this module's constants), and draws nothing
    at random: an answer is the same, bit for bit, with the fit found here or computed afresh.
    Holds :data:`FIT_CACHE_SIZE` fits (a few hundred bytes each), the least recently used
    dropped first; a lock keeps it whole when the explorer's threads share a mechanism.

    >>> cache, made = FitCache(), []
    >>> cache.get(("a",), lambda: made.append(1) or "fit"), cache.get(("a",), lambda: made.append(1)), made
    ('fit', 'fit', [1])
    >>> cache.get(None, lambda: "not kept"), len(cache)
    ('not kept', 1)
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = FIT_CACHE_SIZE if size is None else size
        self._fits: OrderedDict[Hashable, LaplaceFit | None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._fits)

    def get(self, key: Hashable | None, make: Callable[[], LaplaceFit | None]) -> LaplaceFit | None:
        """The fit under ``key``, made by ``make()`` the first time (and not kept when ``key`` is None)."""
        if key is None:
            return make()
        key = (key, NEWTON_STEPS, NEWTON_DECREMENT, MAX_STEP, STENCIL_MAX_DIM, FACTOR_PRIOR_WIDTH)
        with self._lock:
            if key in self._fits:
                self._fits.move_to_end(key)
                return self._fits[key]
        fit = make()
        with self._lock:
            self._fits[key] = fit
            while len(self._fits) > self.size:
                self._fits.popitem(last=False)
        return fit


#: Fits a :class:`FitCache` keeps.
FIT_CACHE_SIZE = 64


def tensor_key(*tensors: Tensor) -> tuple:
    """A key for tensors' exact contents: each one's dtype, shape and a BLAKE2 digest of its bytes."""
    out = []
    for t in tensors:
        t = t.detach().cpu().contiguous()
        out.append((str(t.dtype), tuple(t.shape), hashlib.blake2b(t.numpy().tobytes(), digest_size=16).digest()))
    return tuple(out)


def _stencil(d: int) -> Tensor:
    """The centre, ``±e_i``, and ``(±e_i ± e_j)`` for ``i < j``: ``[2 d^2 + 1, d]`` (float64)."""
    eye = torch.eye(d, dtype=torch.float64)
    points = [torch.zeros(d, dtype=torch.float64)]
    points += [s * eye[i] for i in range(d) for s in (1.0, -1.0)]
    points += [
        a * eye[i] + b * eye[j] for i in range(d) for j in range(i + 1, d) for a in (1.0, -1.0) for b in (1.0, -1.0)
    ]
    return torch.stack(points)


def _derivatives(values: Tensor, h: float, d: int) -> tuple[Tensor, Tensor]:
    """Gradient and Hessian at the stencil's centre from central differences of ``values`` (stencil order)."""
    f0 = values[0]
    plus, minus = values[1 : 1 + 2 * d : 2], values[2 : 2 + 2 * d : 2]
    grad = (plus - minus) / (2 * h)
    hess = torch.diag((plus - 2 * f0 + minus) / h**2)
    k = 1 + 2 * d
    for i in range(d):
        for j in range(i + 1, d):
            pp, pm, mp, mm = values[k : k + 4]
            hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * h * h)
            k += 4
    return grad, hess


#: Above this many dimensions a fit takes its derivatives from autograd when the target allows
#: (``derivatives`` of :func:`laplace_fit`): the stencil's ``2 d^2 + 1`` decodings grow as d^2
#: (Morpho-MNIST's 18: 649 decodings, 133 ms, against 22 ms for autograd's exact Hessian at one
#: point, 1 thread, docs/engine.md); up to it the stencil (cheap there, and its curvature is
#: averaged over a posterior width, which 8-bit bins make lumpy).
STENCIL_MAX_DIM = 8

#: ``point [d] -> (value, gradient [d], Hessian [d, d])`` of the log-density, float64, in Z's units.
Derivatives = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]


def laplace_fit(
    log_density: Callable[[Tensor], Tensor], loc: Tensor, scale: Tensor, *, derivatives: Derivatives | None = None
) -> LaplaceFit | None:
    """The Laplace approximation of ``exp(log_density)`` around its mode, from ``Normal(loc, scale)``'s mean.

    :param log_density: ``z [n, d] -> [n]`` float64, up to a constant (called with
        ``2 d^2 + 1`` rows a step).
    :param loc: ``[d]``, where the search starts (``q``'s mean).
    :param scale: ``[d]``, the units of the search (``q``'s scale).
    :param derivatives: the log-density's value, gradient and Hessian at one point
        (autograd); given, each Newton step calls it instead of decoding the stencil.
    :returns: the fit, or None where it fails (no negative-definite Hessian at
        the best point found, or a non-finite density there).
    """
    d = int(loc.shape[0])
    loc64, scale64 = loc.detach().double(), scale.detach().double()
    stencil = _stencil(d) if derivatives is None else None
    mu = torch.zeros(d, dtype=torch.float64)
    h, best, evaluations = 0.5, None, 0
    for _ in range(NEWTON_STEPS):
        look = _look(log_density, derivatives, stencil, loc64, scale64, mu, h, loc.dtype)
        evaluations += 1
        if look is None:  # a non-finite density
            if best is None:
                return None
            mu = (best[0] + mu) / 2  # back towards the best point found
            continue
        f0, grad, hess = look
        if best is not None and f0 < best[1]:  # the step overshot: halve it
            mu = (best[0] + mu) / 2
            continue
        eig = torch.linalg.eigvalsh(hess)
        concave = bool((eig < 0).all())
        best = (mu, f0, hess if concave else None)
        step = -torch.linalg.solve(hess, grad) if concave else grad / grad.norm().clamp_min(1e-12)
        length = float(step.norm())
        if length > MAX_STEP:
            step = step * (MAX_STEP / length)
        elif concave and float(step @ (-hess) @ step) < NEWTON_DECREMENT**2:
            # the last step is a fraction of the posterior's width: taken without another look
            # (Newton's error after it is of the order of its square)
            best = (mu + step, f0 + grad @ step + 0.5 * step @ hess @ step, hess)  # the quadratic's peak
            break
        mu = mu + step
        if concave:  # the next stencil about one posterior width across
            h = float(min(1.0, max(0.1, float((-1.0 / eig).sqrt().min()))))
    if best is None or best[2] is None:
        return None
    cov = torch.linalg.inv(-best[2])
    tril = scale64[:, None] * torch.linalg.cholesky((cov + cov.T) / 2)
    return LaplaceFit(
        mean=(loc64 + scale64 * best[0]).to(loc.dtype),
        scale_tril=tril.to(loc.dtype),
        evaluations=evaluations,
        log_evidence=float(best[1] + 0.5 * d * math.log(2 * math.pi) + tril.diagonal().log().sum()),
    )


def _look(
    log_density: Callable[[Tensor], Tensor],
    derivatives: Derivatives | None,
    stencil: Tensor | None,
    loc64: Tensor,
    scale64: Tensor,
    mu: Tensor,
    h: float,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """The log-density's value, gradient and Hessian at ``mu`` in q's units (``z = loc + scale mu``):
    from the stencil at step ``h``, or from ``derivatives`` (autograd) rescaled; None where
    some number is not finite."""
    d = int(mu.shape[0])
    if stencil is not None:
        values = log_density((loc64 + scale64 * (mu + h * stencil)).to(dtype)).double()
        if not bool(torch.isfinite(values).all()):
            return None
        return (values[0], *_derivatives(values, h, d))
    f0, g_z, h_z = derivatives(loc64 + scale64 * mu)  # type: ignore[misc]
    if not bool(torch.isfinite(torch.cat([f0.reshape(1), g_z, h_z.reshape(-1)])).all()):
        return None
    return f0, scale64 * g_z, scale64[:, None] * h_z * scale64[None, :]


def draw(loc: Tensor, scale: Tensor, fits: list[LaplaceFit | None], group: Tensor) -> tuple[Tensor, Tensor]:
    """Z for each row from its group's refined proposal: ``(z [S, d], log q' [S] float64)``.

    :param loc: ``[S, d]`` and ``scale`` ``[S, d]``: ``q(Z | X, factors)`` of each row.
    :param fits: one :class:`LaplaceFit` (or None: ``q`` alone) per group.
    :param group: ``[S]`` each row's group (its factor combination).

    A row whose group has a fit draws from ``DEFENSIVE q + (1 - DEFENSIVE) Laplace``
    (one uniform picks the component, one standard normal per dimension
    makes the draw), and its ``log q'`` is that mixture's density at the draw;
    a row without one draws from ``q`` and gets ``q``'s density.
    """
    s, d = loc.shape
    normal = torch.randn(s, d, dtype=loc.dtype)
    pick_q = torch.rand(s) < DEFENSIVE
    z = torch.addcmul(loc, scale, normal)
    q = torch.distributions.Normal(loc.double(), scale.double())
    mean, tril, fitted = _stacked(fits, group, s, d)
    laplace = (mean + (tril @ normal.double().unsqueeze(-1)).squeeze(-1)).to(loc.dtype)
    z = torch.where((fitted & ~pick_q).unsqueeze(1), laplace, z)
    return z, _mixed(q.log_prob(z.double()).sum(1), z.double(), mean, tril, fitted)


def _stacked(fits: list[LaplaceFit | None], group: Tensor, s: int, d: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's group's fit: ``(mean [S, d], scale_tril [S, d, d], fitted [S])``, float64
    (zero mean and the identity for a row whose group has none, ``fitted`` False there)."""
    mean = torch.zeros(s, d, dtype=torch.float64)
    tril = torch.eye(d, dtype=torch.float64).expand(s, d, d).clone()
    fitted = torch.zeros(s, dtype=torch.bool)
    for k, fit in enumerate(fits):
        if fit is None:
            continue
        rows = group == k
        fitted |= rows
        mean[rows], tril[rows] = fit.mean.double(), fit.scale_tril.double()
    return mean, tril, fitted


def _mixed(log_q: Tensor, point: Tensor, mean: Tensor, tril: Tensor, fitted: Tensor) -> Tensor:
    """``log(DEFENSIVE q + (1 - DEFENSIVE) Laplace)`` at ``point`` on the fitted rows, ``log q`` elsewhere."""
    if not bool(fitted.any()):
        return log_q
    log_lap = torch.distributions.MultivariateNormal(mean, scale_tril=tril).log_prob(point)
    mixed = torch.logaddexp(log_q + math.log(DEFENSIVE), log_lap + math.log1p(-DEFENSIVE))
    return torch.where(fitted, mixed, log_q)


def draw_joint(
    c_loc: Tensor,
    c_scale: Tensor,
    z_given: Callable[[Tensor], tuple[Tensor, Tensor]],
    fits: list[LaplaceFit | None],
    group: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Continuous factors ``c`` and Z together for each row: ``(c [S, k] float64, z [S, d], log q' [S] float64)``.

    :param c_loc: ``[k]`` and ``c_scale`` ``[k]``: q(c | X) = Normal(c_loc, c_scale) (one picture).
    :param z_given: ``c [S, k] -> (loc, scale)`` of q(Z | X, factors) with those continuous values.
    :param fits: a :class:`LaplaceFit` over ``(c, z)`` (or None: ``q`` alone) per group.
    :param group: ``[S]`` each row's group (its categorical combination).

    ``q(c, z) = q(c | X) q(z | X, c)``; a row whose group has a fit draws from
    ``DEFENSIVE q + (1 - DEFENSIVE) Laplace``, and ``log q'`` is that mixture's density at
    the draw (``q(z | X, c)`` evaluated at the row's own ``c``, whichever part drew it).
    """
    s, k = group.shape[0], int(c_loc.shape[0])
    fitted = torch.zeros(s, dtype=torch.bool)
    dim = next((int(f.mean.shape[0]) for f in fits if f is not None), None)
    c = c_loc.double() + c_scale.double() * torch.randn(s, k, dtype=torch.float64)
    if dim is not None:
        mean, tril, fitted = _stacked(fits, group, s, dim)
        laplace = mean + (tril @ torch.randn(s, dim, 1, dtype=torch.float64)).squeeze(-1)
        use = fitted & ~(torch.rand(s) < DEFENSIVE)
        c = torch.where(use.unsqueeze(1), laplace[:, :k], c)
    loc, scale = z_given(c)
    z = torch.addcmul(loc, scale, torch.randn_like(loc))
    if dim is not None:
        z = torch.where(use.unsqueeze(1), laplace[:, k:].to(loc.dtype), z)
    log_q = torch.distributions.Normal(c_loc.double(), c_scale.double()).log_prob(c).sum(1)
    log_q = log_q + torch.distributions.Normal(loc.double(), scale.double()).log_prob(z.double()).sum(1)
    if dim is not None:
        log_q = _mixed(log_q, torch.cat([c, z.double()], 1), mean, tril, fitted)
    return c, z, log_q


class NotDifferentiable(Exception):
    """The target gave no gradient (a decoder outside autograd): the stencil is used instead."""


def autograd_derivatives(log_density: Callable[[Tensor], Tensor]) -> Derivatives:
    """:data:`Derivatives` of ``log_density`` (``[n, d] -> [n]``, differentiable) by autograd:
    one forward pass, the gradient with its graph, and the Hessian's rows as one batched
    backward pass. Raises :class:`NotDifferentiable` when the value has no gradient."""

    def derivatives(point: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        with torch.enable_grad():
            p = point.detach().double().clone().requires_grad_(True)
            value = log_density(p[None])[0]
            if not value.requires_grad:
                raise NotDifferentiable("the log-density has no gradient")
            (grad,) = torch.autograd.grad(value, p, create_graph=True)
            if not grad.requires_grad:  # linear in p: the Hessian is 0
                return value.detach(), grad.detach(), torch.zeros(len(p), len(p), dtype=torch.float64)
            eye = torch.eye(len(p), dtype=grad.dtype)
            (hess,) = torch.autograd.grad(grad, p, grad_outputs=eye, is_grads_batched=True)
        return value.detach().double(), grad.detach().double(), ((hess + hess.T) / 2).detach().double()

    return derivatives


def refined_choice(log_q: Tensor, top: Tensor, fits: list[LaplaceFit | None]) -> Tensor:
    """The categorical combinations' proposal, refined: ``log q'`` ``[M]`` (float64).

    :param log_q: ``[M]`` q(combination | X).
    :param top: the combinations fitted, ``fits[i]`` the fit of ``top[i]`` (or None).

    ``q' = DEFENSIVE q + (1 - DEFENSIVE) r`` with ``r`` proportional to the fits' Laplace
    evidence (each combination's marginal likelihood of the picture, a uniform prior over
    the fitted ones; 0 elsewhere); ``q`` itself where no combination has a fit.

    >>> import torch
    >>> fit = lambda e: LaplaceFit(torch.zeros(1), torch.ones(1, 1), 1, log_evidence=e)
    >>> q = torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    >>> [round(v, 3) for v in refined_choice(q, torch.tensor([0, 1]), [fit(0.0), fit(2.0)]).exp().tolist()]
    [0.138, 0.852, 0.01]
    """
    evidence = torch.tensor([f.log_evidence if f is not None else -math.inf for f in fits], dtype=torch.float64)
    evidence = torch.where(torch.isfinite(evidence), evidence, -math.inf)  # no fit, no evidence
    if not bool(torch.isfinite(evidence).any()):
        return log_q
    log_r = torch.full_like(log_q, -math.inf)
    log_r[top] = evidence - evidence[torch.isfinite(evidence)].logsumexp(0)
    return torch.logaddexp(log_q + math.log(DEFENSIVE), log_r + math.log1p(-DEFENSIVE))
