"""The one walk of an SCM: its nodes in topological order, a policy deciding each node.

Forward sampling, the SCM as a Pyro model, abduction, rejuvenation,
prediction, the prediction of only what an intervention changes, the story's
sampler and evaluation's importance sampler are all this walk, each with its
own :class:`Policy` -- as pyro runs one model under different messengers and
chirho's handlers decide what a sample site does. The walk alone applies
``do()``: an intervened node's value is the constant, expanded over the
particles, whatever the policy; the policy only says what becomes of the
node's noise and weight there (:meth:`Policy.intervened`).

At every node the walk hands the policy a :class:`Site` (the node, its
mechanism, its parents' values, the number of particles); the policy sets
the site's ``value``, and may set its ``noise`` and a ``log_weight`` term.
The walk collects them into a :class:`Walked`: ``{node: noise}`` (nodes
whose policy gave noise), ``{node: value}``, and the log-weights summed in
the nodes' order onto the ``log_weight`` it started from.

>>> import torch
>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> scm = build_scm(load_story())
>>> torch.manual_seed(0) and None
>>> forward = walk(scm, Forward(scm), 4)
>>> replayed = walk(scm, Replay(forward.noise), 4)
>>> all(torch.equal(forward.values[v], replayed.values[v]) for v in scm.nodes)
True
>>> square = scm.with_interventions({"shape": torch.tensor(0)})
>>> walk(square, Replay(forward.noise), 4).values["shape"].tolist()   # do() by the walk
[0, 0, 0, 0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if (
    TYPE_CHECKING
):  # torch and pyro are imported where used: `import cvaeq` loads neither (the story's sampler walks too)
    from torch import Tensor

__all__ = [
    "walk",
    "Site",
    "Walked",
    "Policy",
    "Forward",
    "PyroSites",
    "Replay",
    "ReplayChanged",
    "Weigh",
    "View",
    "Root",
    "around",
    "batched",
    "NOISE_PREFIX",
    "noise_site",
    "value_site",
]


class Walkable(Protocol):
    """What the walk reads of an SCM (:class:`cvaeq.scm.SCM`, or a view of a story)."""

    @property
    def nodes(self) -> tuple[str, ...]: ...

    @property
    def mechanisms(self) -> Mapping[str, Any]: ...  # each with ``parents`` and ``event_dim``

    @property
    def interventions(self) -> Mapping[str, Any]: ...


@dataclass(slots=True)
class Site:
    """One node as the walk visits it.

    :ivar node: the node's name.
    :ivar mechanism: its mechanism (``parents``, ``event_dim``, ...).
    :ivar parents: ``{parent: value [S, ...]}`` in the mechanism's parent order.
    :ivar num: ``S``, the particles.
    :ivar value: set by the policy (by the walk, for an intervened node).
    :ivar noise: set by a policy that draws, abducts or replays noise.
    :ivar log_weight: a ``[S]`` term the policy adds to the weights, or None.
    """

    node: str
    mechanism: Any
    parents: dict[str, Any]
    num: int
    value: Any = None
    noise: Any = None
    log_weight: Any = None


@dataclass(frozen=True)
class Walked:
    """What a walk gave: noise and values per node, and the summed log-weights."""

    noise: dict[str, Any]
    values: dict[str, Any]
    log_weight: Any


class Policy:
    """What happens at each node of the walk; subclasses override :meth:`visit`
    and, where an intervened node's noise matters, :meth:`intervened`."""

    def visit(self, site: Site) -> None:
        """A node the SCM does not intervene on: set ``site.value`` (and maybe noise, weight)."""
        raise NotImplementedError

    def intervened(self, site: Site) -> None:
        """A node under ``do()``: ``site.value`` is already the constant; by
        default nothing else happens (no noise, no weight)."""


def batched(value: Any, event_dim: int, num: int) -> Tensor:
    """``value`` with its particle dimension: a constant (one value of
    ``event_dim`` dimensions) expanded over ``num`` particles, a batched one as it is."""
    import torch

    value = torch.as_tensor(value)
    if value.dim() == event_dim:
        return value.expand(num, *value.shape)
    return value


def walk(scm: Walkable, policy: Policy, num: int, log_weight: Any = None) -> Walked:
    """Visit ``scm``'s nodes in topological order under ``policy``.

    :param scm: the SCM (its ``nodes``, ``mechanisms``, ``interventions``).
    :param policy: what happens at each node (:class:`Policy`).
    :param num: the particles ``S``.
    :param log_weight: where the log-weights start (None: no weights; a term
        set by a policy then starts them).
    :returns: a :class:`Walked`. ``do()`` is applied here and nowhere else.
    """
    noise: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for v in scm.nodes:
        m = scm.mechanisms[v]
        site = Site(v, m, {p: values[p] for p in m.parents}, num)
        if v in scm.interventions:
            site.value = batched(scm.interventions[v], m.event_dim, num)
            policy.intervened(site)
        else:
            policy.visit(site)
        if site.noise is not None:
            noise[v] = site.noise
        if site.log_weight is not None:
            log_weight = site.log_weight if log_weight is None else log_weight + site.log_weight
        values[v] = site.value
    return Walked(noise, values, log_weight)


class Forward(Policy):
    """Forward sampling: each node's noise from its prior (``scm.noise_prior``),
    its value by ``assign``; an intervened node's noise is drawn too, unused,
    so that the random numbers are the same with and without ``do()``."""

    def __init__(self, scm: Any) -> None:
        self.scm = scm

    def visit(self, site: Site) -> None:
        site.noise = self.scm.noise_prior(site.node, site.num).sample()
        site.value = site.mechanism.assign(site.parents, site.noise)

    def intervened(self, site: Site) -> None:
        site.noise = self.scm.noise_prior(site.node, site.num).sample()


#: Prefix of every noise site: node ``v``'s exogenous noise is the site ``"N_" + v``.
NOISE_PREFIX = "N_"


def noise_site(node: str) -> str:
    """Name of the Pyro sample site holding node ``node``'s exogenous noise."""
    return NOISE_PREFIX + node


def value_site(node: str) -> str:
    """Name of the Pyro site holding node ``node``'s value (the node's own name)."""
    return node


class PyroSites(Policy):
    """The walk's policy that makes the SCM a Pyro model: a ``pyro.sample``
    site for each node's noise, a ``pyro.deterministic`` site for its value."""

    def __init__(self, scm: Any) -> None:
        import pyro

        self.scm, self.pyro = scm, pyro

    def _noise(self, site: Site) -> Tensor:
        return self.pyro.sample(noise_site(site.node), self.scm.noise_prior(site.node, site.num))

    def visit(self, site: Site) -> None:
        m = site.mechanism
        site.noise = self._noise(site)
        value = self.pyro.deterministic(
            value_site(site.node), m.assign(site.parents, site.noise), event_dim=m.event_dim
        )
        site.value = batched(value, m.event_dim, site.num)  # an outer poutine.do may give a constant

    def intervened(self, site: Site) -> None:
        site.noise = self._noise(site)
        self.pyro.deterministic(value_site(site.node), site.value, event_dim=site.mechanism.event_dim)


class Replay(Policy):
    """Prediction: every node's value from its given noise (``{node: [S, ...]}``)."""

    def __init__(self, noise: Mapping[str, Tensor]) -> None:
        self.noise = noise

    def visit(self, site: Site) -> None:
        m = site.mechanism
        site.value = batched(m.assign(site.parents, self.noise[site.node]), m.event_dim, site.num)


class ReplayChanged(Policy):
    """Prediction of only what an intervention changes: the nodes in
    ``changed`` (the intervened nodes' descendants) from their noise, the
    others keep their factual ``values`` (replaying their noise would give
    them back: every mechanism family is checked for it, :mod:`cvaeq.testing`)."""

    def __init__(self, noise: Mapping[str, Tensor], values: Mapping[str, Tensor], changed: set[str]) -> None:
        self.noise, self.values, self.changed = noise, values, changed

    def visit(self, site: Site) -> None:
        if site.node in self.changed:
            site.value = batched(
                site.mechanism.assign(site.parents, self.noise[site.node]), site.mechanism.event_dim, site.num
            )
        else:
            site.value = self.values[site.node]


class Weigh(Policy):
    """Importance weighting at given values, no noise: every node takes its
    value from ``values``; its weight term is ``terms[node]`` where given (a
    proposal's ``log prior - log q``), its mechanism's ``log_prob(value,
    parents)`` for the nodes in ``likelihood``, none otherwise (values
    conditioned on)."""

    def __init__(
        self, values: Mapping[str, Any], terms: Mapping[str, Tensor] = {}, likelihood: tuple[str, ...] = ()
    ) -> None:
        self.values, self.terms, self.likelihood = values, terms, likelihood

    def visit(self, site: Site) -> None:
        site.value = self.values[site.node]
        if site.node in self.likelihood:
            site.log_weight = site.mechanism.log_prob(site.value, site.parents)
        else:
            site.log_weight = self.terms.get(site.node)


@dataclass(frozen=True)
class Root:
    """A node the walk visits with no mechanism, only its parents: its policy gives its value."""

    parents: tuple[str, ...] = ()
    event_dim: int = 0


@dataclass(frozen=True)
class View:
    """Nodes in topological order and what the walk reads of their mechanisms, without an SCM."""

    nodes: tuple[str, ...]
    mechanisms: Mapping[str, Any]
    interventions: Mapping[str, Any] = field(default_factory=dict)


def around(node: str, mechanism: Any) -> View:
    """One mechanism and its parents as roots (their values given to the
    policy): ``node`` last, its parents before it in their order."""
    return View((*mechanism.parents, node), {**{p: Root() for p in mechanism.parents}, node: mechanism})
