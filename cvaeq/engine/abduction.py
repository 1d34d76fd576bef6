"""Abduction: the posterior over all exogenous noise given factual evidence.

The walk (:mod:`cvaeq.walk`) visits the nodes in topological order under
:class:`Abduce`; for node ``v``:

* ``v`` observed (or proposed, below), parents known in every particle: noise
  and weight from the mechanism's exact ``abduct`` (the weight
  ``log p(value | parents)``, as ``log_prob`` gives it);
  a mechanism without them goes through the generic fallback
  (:func:`fallback_abduct`);
* ``v`` unobserved, parent of an observed node whose mechanism can ``propose``
  (the factors and Z when only X is given): its value was drawn from that
  proposal before the pass, weight += log prior - log proposal;
* intervened: the constant (the walk's ``do()``), noise from its prior,
  weight ``-inf`` where evidence on it disagrees;
* otherwise: noise from its prior, value by ``assign``.

A mechanism that abducts in two steps (``weigh``: the 8-bit image) is only
weighed in the walk; its noise is drawn after the resampling decision, for
the particles kept (:func:`abduct`).

The weights are self-normalised and their effective sample size recorded;
particles are resampled when the ESS falls below ``resample_below * S``, and
the copies then *rejuvenated* (:func:`rejuvenate`): given every node's value,
the noise posterior factorises over nodes, so each copy redraws the noise of
every exactly-abducible node from ``p(N_v | v, parents)``. The copies of one
heavy particle then share its factors and Z but not its Gumbel or pixel noise,
and a counterfactual's descendants are drawn ``S`` times, not ESS times.

>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> import torch
>>> p = abduct(build_scm(load_story()), {"shape": torch.tensor(2)}, 8)
>>> p.values["shape"].tolist(), p.ess
([2, 2, 2, 2, 2, 2, 2, 2], 8.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from functools import partial

import torch
from torch import Tensor

from ..allocator import keep_freed_memory
from ..errors import MechanismError, QueryError
from ..mechanisms.base import abducted_noise, abduction, can_abduct, can_propose, can_weigh_first, checked_value
from ..scm import SCM
from ..walk import Forward, Site, walk
from .particles import Particles, effective_sample_size, systematic_indices

__all__ = ["abduct", "rejuvenate", "fallback_abduct", "batch_evidence", "FALLBACK_SAMPLES"]

#: Noise draws per particle in the generic fallback.
FALLBACK_SAMPLES = 64


def batch_evidence(scm: SCM, evidence: Mapping[str, object], num_particles: int) -> dict[str, Tensor]:
    """Evidence values checked against the SCM and expanded to ``[S, ...]``.

    Values may be unbatched (a class, a ``[d]`` vector, an ``[H, W]`` image) or
    already batched over particles.
    """
    out: dict[str, Tensor] = {}
    for v, value in evidence.items():
        if v not in scm.graph:
            raise QueryError(f"evidence on unknown node {v!r}; known: {', '.join(scm.nodes)}")
        m = scm.mechanisms[v]
        t = checked_value(m, v, value, partial(_evidence_said, v, value))
        if t.dim() == m.event_dim:
            t = t.expand(num_particles, *t.shape)
        elif t.dim() != m.event_dim + 1 or t.shape[0] != num_particles:
            raise QueryError(
                f"evidence on {v!r} has shape {tuple(t.shape)}; expected {m.event_dim} dimension(s) "
                f"for one value, or a leading dimension of {num_particles} particles"
            )
        out[v] = t
    return out


def _evidence_said(node: str, value: object) -> str:
    """How an error names evidence ``node = value`` (:func:`checked_value` calls it only for one)."""
    return f"evidence {node}={_shown(value)}"


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, or its type and shape for an array of more than
    1,000 values (a picture: torch's repr of a 64×64×3 one took 10 ms, in every image query,
    for a message that is only shown when a class is off its domain)."""
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "__len__") and math.prod(shape) > 1000:
        return f"<{type(value).__name__} of shape {tuple(shape)}>"
    return repr(value)


def fallback_abduct(
    scm: SCM, node: str, value: Tensor, parents: Mapping[str, Tensor], samples: int = FALLBACK_SAMPLES
) -> tuple[Tensor, Tensor]:
    """Noise for a mechanism with only ``noise_prior`` and ``assign``: ``(noise, log_weight)``.

    Likelihood weighting over the noise: ``samples`` prior draws per particle;
    the weight is the log of the fraction reproducing the observed value (an
    unbiased estimate of ``p(value | parents)``) and one reproducing draw is
    kept. Slower and noisier than exact abduction, and only for discrete values.
    """
    m = scm.mechanisms[node]
    if value.is_floating_point() and not bool((value == value.round()).all()):
        raise MechanismError(
            f"the mechanism of {node!r} has no abduct()/log_prob(), and the generic fallback needs "
            "discrete values; give the mechanism abduct() and log_prob()"
        )
    num = value.shape[0]
    draws = scm.noise_prior(node, num * samples).sample()
    rep = {p: t.repeat_interleave(samples, 0) for p, t in parents.items()}
    got = m.assign(rep, draws)
    got = got.reshape(num, samples, *got.shape[1:])
    match = (got == value.unsqueeze(1)).reshape(num, samples, -1).all(-1)
    frac = match.double().mean(1)
    choose = match.double() + (~match.any(1, keepdim=True)).double()
    pick = torch.multinomial(choose, 1).squeeze(1)
    noise = draws.reshape(num, samples, *draws.shape[1:])[torch.arange(num), pick]
    return noise, frac.log()


class Abduce(Forward):
    """The walk's policy of abduction (the cases of the module docstring) at
    ``fixed`` known values (evidence and proposals), ``weigh_only`` of them weighed without noise;
    with ``defer``, a mechanism that can weigh first (:func:`can_weigh_first`) only weighs, and
    leaves in :attr:`deferred` the draw of its noise for after resampling."""

    def __init__(
        self,
        scm: SCM,
        fixed: Mapping[str, Tensor],
        weigh_only: Collection[str],
        fallback_samples: int,
        defer: bool = False,
    ):
        super().__init__(scm)
        self.fixed, self.weigh_only, self.fallback_samples, self.defer = fixed, weigh_only, fallback_samples, defer
        #: ``{node: draw(rows)}``: the noise of the nodes weighed now and drawn later
        self.deferred: dict[str, Callable[[Tensor | None], Tensor]] = {}

    def visit(self, site: Site) -> None:
        if site.node not in self.fixed:
            return super().visit(site)
        m, value = site.mechanism, self.fixed[site.node]
        if can_abduct(m) and site.node in self.weigh_only:
            site.log_weight = m.log_prob(value, site.parents).double()
        elif self.defer and can_weigh_first(m):
            lw, self.deferred[site.node] = m.weigh(value, site.parents)
            site.log_weight = lw.double()
        elif can_abduct(m):  # the noise and its weight from one call: the image decodes once for both
            site.noise, lw = abduction(m, value, site.parents)
            site.log_weight = lw.double()
        else:
            site.noise, site.log_weight = fallback_abduct(
                self.scm, site.node, value, site.parents, self.fallback_samples
            )
        site.value = value

    def intervened(self, site: Site) -> None:
        super().intervened(site)
        if site.node in self.fixed:  # evidence on an intervened node: it holds or the particle is impossible
            same = (self.fixed[site.node] == site.value).reshape(site.num, -1).all(-1)
            site.log_weight = torch.where(same, 0.0, float("-inf")).double()


def _propose(scm: SCM, ev: Mapping[str, Tensor], log_w: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """Known values (the evidence, and the unobserved parents of observed nodes
    drawn from those nodes' proposals) and the log-weights less ``log q``."""
    fixed = dict(ev)
    for c in scm.nodes:
        if c not in ev or not can_propose(scm.mechanisms[c]):
            continue
        unknown = [p for p in scm.graph.parents(c) if p not in fixed and p not in scm.interventions]
        if not unknown:
            continue
        proposed = scm.mechanisms[c].propose(ev[c], unknown, dict(fixed))  # type: ignore[attr-defined]  # can_propose checked it
        if proposed is None:
            continue
        values, log_q = proposed
        fixed.update({k: v for k, v in values.items() if k in unknown})
        log_w = log_w - log_q.double()
    return fixed, log_w


def abduct(
    scm: SCM,
    evidence: Mapping[str, object],
    num_particles: int,
    *,
    resample_below: float = 0.5,
    fallback_samples: int = FALLBACK_SAMPLES,
    weigh_only: Collection[str] = (),
) -> Particles:
    """Weighted particles of every node's noise given the factual ``evidence``.

    :param scm: the factual SCM (interventions on it are respected: an
        intervened node takes its constant, evidence on it must match).
    :param evidence: ``{node: value}``, unbatched or batched over particles.
    :param num_particles: ``S``.
    :param resample_below: resample when ESS < this fraction of ``S`` (0: never).
    :param fallback_samples: noise draws per particle in the generic fallback.
    :param weigh_only: observed nodes whose likelihood weighs the particles but
        whose noise is not wanted (evaluation reads the decoder's mean over
        abducted factors and Z without replaying pixel noise): their noise is
        not drawn, and such particles cannot be predicted from.
    :returns: :class:`Particles` (noise and factual values per node, log-weights, ESS).
    """
    if isinstance(num_particles, bool) or not isinstance(num_particles, int) or num_particles < 1:
        raise QueryError(f"the number of particles must be a positive integer, got {num_particles!r}")
    keep_freed_memory()  # image-sized buffers reused, not page-faulted afresh (cvaeq.allocator)
    S = num_particles
    ev = batch_evidence(scm, evidence, S)
    fixed, log_w = _propose(scm, ev, torch.zeros(S, dtype=torch.float64))
    # with resampling possible, an image that can weigh first draws its pixel noise once, after it
    policy = Abduce(scm, fixed, weigh_only, fallback_samples, defer=resample_below > 0)
    walked = walk(scm, policy, S, log_w)
    log_w = walked.log_weight
    particles = Particles(noise=walked.noise, values=walked.values, log_weights=log_w, ess=effective_sample_size(log_w))
    if particles.ess < resample_below * S:
        rows = systematic_indices(particles.weights.unsqueeze(0))[0]  # (Particles.resample's one uniform)
        return rejuvenate(scm, particles.take(rows), {v: partial(draw, rows) for v, draw in policy.deferred.items()})
    if policy.deferred:
        noise = dict(particles.noise)
        noise.update({v: draw(None) for v, draw in policy.deferred.items()})
        particles = dataclasses.replace(particles, noise={v: noise[v] for v in scm.nodes if v in noise})
    return particles


class Rejuvenate(Forward):
    """The walk's policy of :func:`rejuvenate`."""

    def __init__(self, scm: SCM, particles: Particles, drawn: Mapping[str, Callable[[], Tensor]]) -> None:
        super().__init__(scm)
        self.particles, self.drawn = particles, drawn

    def visit(self, site: Site) -> None:
        m, old = site.mechanism, self.particles.noise.get(site.node)
        site.value = self.particles.values[site.node]
        if site.node in self.drawn:
            site.noise = self.drawn[site.node]()
        elif can_abduct(m) and old is not None:  # (a node abducted for its weight only has none)
            site.noise = abducted_noise(m, site.value, site.parents)
        else:
            site.noise = old

    def intervened(self, site: Site) -> None:
        super().intervened(site)
        site.value = self.particles.values[site.node]  # the constant, copied as the particles were


def rejuvenate(scm: SCM, particles: Particles, drawn: Mapping[str, Callable[[], Tensor]] | None = None) -> Particles:
    """Redraw each node's noise from ``p(N_v | v, parents)`` at the particles' values.

    Exact: the noise of the evidence's posterior, given all node values, is
    ``prod_v p(N_v | v, parents_v)``, so this leaves the posterior unchanged
    while giving resampled copies independent noise. Nodes whose mechanism
    cannot abduct keep their noise; an intervened node's noise is unused and
    redrawn from its prior. Weights and values are unchanged. ``drawn``:
    ``{node: draw()}`` for nodes whose posterior noise a mechanism draws
    from what it kept when it weighed them (``weigh``), in the walk's order.
    """
    noise = walk(scm, Rejuvenate(scm, particles, drawn or {}), particles.num_particles).noise
    return Particles(
        noise=noise,
        values=particles.values,
        log_weights=particles.log_weights,
        ess=particles.ess,
        resampled=particles.resampled,
    )
