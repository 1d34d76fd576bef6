"""A structural causal model: a causal graph plus one mechanism per node.

As a Pyro model, every node ``v`` has an explicit noise site and a value site::

    noise = pyro.sample(noise_site(v), mechanism.noise_prior(S))   # "N_v"
    value = pyro.deterministic(v, mechanism.assign(parents, noise))

so that action is ``poutine.do`` on the value sites and prediction is
``poutine.condition`` on the noise sites. Site names are a contract, kept here:
the value site is the node's name, the noise site is :data:`NOISE_PREFIX` + name.

>>> from cvaeq.story import load_story
>>> scm = build_scm(load_story("default"))
>>> scm.nodes
('Z', 'shape', 'scale', 'orientation', 'posX', 'posY')
>>> sorted(scm.sample(4, seed=0))[:2]
['Z', 'orientation']
>>> noise_site("shape")
'N_shape'
"""

from __future__ import annotations

import threading
from typing import Mapping

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch import Tensor

from .errors import GraphError, MechanismError
from .graph import CausalGraph
from .mechanisms.base import Mechanism
from .mechanisms.image import ImageModel

__all__ = ["SCM", "NOISE_PREFIX", "noise_site", "value_site", "build_scm", "cached_scm", "clear_scm_cache", "scm_from_story", "DEFAULT_MECHANISM"]

#: Prefix of every noise site: node ``v``'s exogenous noise is the site ``"N_" + v``.
NOISE_PREFIX = "N_"
#: The mechanism family of a story factor that names none.
DEFAULT_MECHANISM = "gumbel_max"


def noise_site(node: str) -> str:
    """Name of the Pyro sample site holding node ``node``'s exogenous noise."""
    return NOISE_PREFIX + node


def value_site(node: str) -> str:
    """Name of the Pyro site holding node ``node``'s value (the node's own name)."""
    return node


class _Wrapped(dist.TorchDistribution):
    """A plain ``torch.distributions`` object made usable by ``pyro.sample``."""

    def __init__(self, base: torch.distributions.Distribution) -> None:
        self.base = base
        super().__init__(base.batch_shape, base.event_shape, validate_args=False)

    def sample(self, sample_shape=torch.Size()):
        return self.base.sample(sample_shape)

    def log_prob(self, value):
        return self.base.log_prob(value)


def _batched(value: Tensor, event_dim: int, num: int) -> Tensor:
    """``value`` with its particle dimension (constants from ``do()`` are expanded)."""
    value = torch.as_tensor(value)
    if value.dim() == event_dim:
        return value.expand(num, *value.shape)
    return value


#: Noise priors an SCM keeps (``(node, particle count)`` pairs) before starting afresh.
PRIORS_KEPT = 256


class SCM:
    """A causal graph and a mechanism per node, possibly under interventions.

    :param graph: the DAG (:class:`cvaeq.graph.CausalGraph`).
    :param mechanisms: ``{node: mechanism}`` for every node; each mechanism's
        ``parents`` must be the node's parents in ``graph``.
    :param interventions: ``{node: value}`` (unbatched values); normally made by
        :func:`cvaeq.engine.intervene`, not given directly.
    :param world: the :class:`~cvaeq.world.World` whose factors are nodes, if
        any (it gives numeric factors their values for expectations).
    """

    def __init__(
        self,
        graph: CausalGraph,
        mechanisms: Mapping[str, Mechanism],
        interventions: Mapping[str, Tensor] | None = None,
        world=None,
    ) -> None:
        missing = [v for v in graph.order if v not in mechanisms]
        if missing:
            raise MechanismError(f"node {missing[0]!r} has no mechanism; give one for every node of the graph")
        extra = [v for v in mechanisms if v not in graph]
        if extra:
            raise GraphError(f"mechanism for {extra[0]!r}, which is not a node; known: {', '.join(graph.order)}")
        for v in graph.order:
            m = mechanisms[v]
            for member in ("noise_prior", "assign"):
                if not callable(getattr(m, member, None)):
                    raise MechanismError(f"the mechanism of {v!r} has no {member}(); see cvaeq.mechanisms.base")
            if set(getattr(m, "parents", ())) != set(graph.parents(v)):
                raise MechanismError(
                    f"the mechanism of {v!r} reads parents {tuple(getattr(m, 'parents', ()))}, "
                    f"but the graph gives {graph.parents(v)}; make them agree"
                )
        self.graph = graph
        self.mechanisms: dict[str, Mechanism] = dict(mechanisms)
        self.interventions: dict[str, Tensor] = dict(interventions or {})
        self.world = world
        #: ``{(node, num_particles): noise prior}``: a Pyro distribution costs
        #: ~0.3 ms to build, more than a query's whole factor arithmetic; shared
        #: with the SCMs :func:`~cvaeq.engine.intervene` derives (same mechanisms)
        self._priors: dict[tuple[str, int], dist.TorchDistribution] = {}

    def with_interventions(self, interventions: Mapping[str, Tensor]) -> "SCM":
        """The same graph and mechanisms under ``interventions`` (checked ones:
        :func:`cvaeq.engine.intervene` is the way to get here), sharing this
        SCM's noise priors, which the interventions do not change."""
        world = SCM(self.graph, self.mechanisms, interventions, world=self.world)
        world._priors = self._priors
        return world

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes in topological order."""
        return self.graph.order

    def __repr__(self) -> str:
        do = f", do={sorted(self.interventions)}" if self.interventions else ""
        return f"SCM(nodes={list(self.nodes)}{do})"

    def noise_prior(self, node: str, num_particles: int) -> dist.TorchDistribution:
        """The batched noise prior of ``node``, as a Pyro distribution (built
        once per node and particle count: a mechanism's noise prior depends on
        nothing else)."""
        key = (node, num_particles)
        d = self._priors.get(key)
        if d is None:
            d = self.mechanisms[node].noise_prior(num_particles)
            d = d if isinstance(d, TorchDistributionMixin) else _Wrapped(d)
            if len(self._priors) >= PRIORS_KEPT:
                self._priors.clear()
            self._priors[key] = d
        return d

    def _forward(self, num_particles: int) -> dict[str, Tensor]:
        values: dict[str, Tensor] = {}
        for v in self.graph.order:
            m = self.mechanisms[v]
            noise = pyro.sample(noise_site(v), self.noise_prior(v, num_particles))
            value = m.assign({p: values[p] for p in m.parents}, noise)
            value = pyro.deterministic(value_site(v), value, event_dim=m.event_dim)
            values[v] = _batched(value, m.event_dim, num_particles)
        return values

    def model(self, num_particles: int) -> dict[str, Tensor]:
        """The SCM as a Pyro model over ``num_particles`` particles; returns ``{node: value}``.

        Interventions are applied with ``poutine.do`` on the value sites; the
        returned values are those the downstream mechanisms saw.
        """
        if not self.interventions:
            return self._forward(num_particles)
        return poutine.do(self._forward, data=self.interventions)(num_particles)

    def sample(self, num_particles: int, seed: int | None = None) -> dict[str, Tensor]:
        """Forward samples of every node (from the interventional model if intervened)."""
        if seed is None:
            return self.model(num_particles)
        from .engine.particles import checked_seed

        seed = checked_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only, as in engine.infer
            return self.model(num_particles)


def build_scm(story, factor_logits: Mapping[str, Tensor] | None = None, image_model: ImageModel | None = None) -> SCM:
    """The SCM of a story: its factor mechanisms, a Gaussian Z and, given a model, X.

    :param story: a :class:`cvaeq.story.Story`.
    :param factor_logits: optional ``{factor: logits [*parent sizes, size]}``
        replacing the story's tables (e.g. fitted by the trained model).
    :param image_model: an :class:`~cvaeq.mechanisms.image.ImageModel`; without
        one the SCM has no image node X (factor-level queries only).

    Each factor's family is the story's ``mechanism`` for it (default
    ``"gumbel_max"``), built as ``factory(parents=..., probs=table)``. The
    image's mechanism is the registered image mechanism of the model's pixel
    kind (``bernoulli`` for binary worlds, ``discretised_logistic`` for 8-bit
    ones; :func:`cvaeq.plugins.image_mechanism_for`).
    """
    from .plugins import get_mechanism_family, image_mechanism_for
    from .story import IMAGE, LATENT

    factor_logits = dict(factor_logits or {})
    FACTORS = story.world.names
    unknown = [f for f in factor_logits if f not in FACTORS]
    if unknown:
        raise MechanismError(f"factor_logits names {unknown[0]!r}, not a factor; factors: {', '.join(FACTORS)}")
    chosen = getattr(story, "mechanisms", {}) or {}
    mechanisms: dict[str, Mechanism] = {}
    for f in story.factors:
        if f in factor_logits:
            probs = torch.softmax(torch.as_tensor(factor_logits[f], dtype=torch.float64), dim=-1)
        else:
            probs = torch.as_tensor(story.table(f), dtype=torch.float64)
        family = get_mechanism_family(chosen.get(f, DEFAULT_MECHANISM))
        mechanisms[f] = _factor_mechanism(family, f, story.parents(f), probs)
    latent_dim = story.latent_dim
    if image_model is not None:
        latent_dim = int(image_model.latent_dim)
    mechanisms[LATENT] = get_mechanism_family("gaussian_latent")(dim=latent_dim)
    graph = story.graph
    if image_model is not None:
        mechanisms[IMAGE] = image_mechanism_for(image_model, story.world)(
            image_model=image_model, parents=story.graph.parents(IMAGE), factors=FACTORS,
            shape=story.world.image_shape,
        )
    else:
        graph = CausalGraph([(u, v) for u, v in graph.edges if v != IMAGE], nodes=[n for n in graph.order if n != IMAGE])
    return SCM(graph, mechanisms, world=story.world)


def _factor_mechanism(family, factor: str, parents: tuple[str, ...], probs: Tensor) -> Mechanism:
    """``family(parents=..., probs=...)`` for a story factor, checked where a plugin's
    mechanism enters: a categorical mechanism of the table's size that reads its parents."""
    from .mechanisms.checked import CheckedMechanism

    m = family(parents=parents, probs=probs)
    if type(m) is CheckedMechanism:  # a plugin's mechanism: its errors name the node
        m.node = factor
    if family.plugin not in _builtin_plugins():
        size, event_dim = getattr(m, "size", None), getattr(m, "event_dim", None)
        if event_dim != 0 or size != probs.shape[-1]:
            from .errors import PluginError

            raise PluginError(
                f"plugin {family.plugin!r} (mechanism {family.name!r}, node {factor!r}): built a mechanism of "
                f"size {size!r} and event_dim {event_dim!r} for a factor of {probs.shape[-1]} classes; a story "
                "factor's mechanism is categorical (event_dim 0) with the table's size; fix or uninstall the plugin"
            )
    return m


def _builtin_plugins() -> tuple[str, ...]:
    from .plugins import DEFAULT_PLUGINS

    return DEFAULT_PLUGINS


#: SCMs :func:`cached_scm` keeps.
SCMS_KEPT = 4
#: ``[((story, factor_logits, image_model), SCM)]``, least recently used first;
#: holding the parts keeps their identities from being reused.
_SCMS: list[tuple[tuple, SCM]] = []
_SCMS_LOCK = threading.Lock()


def cached_scm(story, factor_logits=None, image_model=None) -> SCM:
    """:func:`build_scm`, built once per story, tables and image model (the very
    objects: a cached checkpoint or a story hands out the same ones again), for
    the last :data:`SCMS_KEPT` of them. An SCM keeps its mechanisms' noise
    priors, so repeated queries skip building both; an SCM is never changed
    once built (intervene() derives new ones), so sharing it is safe."""
    parts = (story, factor_logits, image_model)
    with _SCMS_LOCK:
        for i, (kept, scm) in enumerate(_SCMS):
            if all(a is b for a, b in zip(kept, parts)):
                _SCMS.append(_SCMS.pop(i))  # most recently used last
                return scm
    scm = build_scm(story, factor_logits, image_model)
    with _SCMS_LOCK:
        _SCMS.append((parts, scm))
        del _SCMS[:-SCMS_KEPT]
    return scm


def clear_scm_cache() -> None:
    """Forget the SCMs :func:`cached_scm` keeps (and so the models they hold)."""
    with _SCMS_LOCK:
        _SCMS.clear()


def scm_from_story(story) -> SCM:
    """The factor-level SCM of a story (its tables, a Gaussian Z, no image)."""
    return build_scm(story)
