"""A structural causal model: a causal graph plus one mechanism per node.

As a Pyro model, every node ``v`` has an explicit noise site and a value site::

    noise = pyro.sample(noise_site(v), mechanism.noise_prior(S))   # "N_v"
    value = pyro.deterministic(v, mechanism.assign(parents, noise))

(the walk of :mod:`cvaeq.walk` under its :class:`~cvaeq.walk.PyroSites`
policy, the walk applying the SCM's interventions). Site names are a
contract (kept in :mod:`cvaeq.walk`, exported here too): the value site is
the node's name, the noise site is :data:`NOISE_PREFIX` + name.

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

import contextlib
from collections.abc import Mapping

import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch import Tensor

from .errors import GraphError, MechanismError
from .graph import CausalGraph
from .image_model import ImageModel
from .mechanisms.base import Mechanism
from .walk import NOISE_PREFIX, PyroSites, noise_site, value_site, walk

__all__ = [
    "SCM",
    "NoisePriors",
    "NOISE_PREFIX",
    "noise_site",
    "value_site",
    "build_scm",
    "scm_from_story",
    "DEFAULT_MECHANISM",
    "CONTINUOUS_MECHANISM",
]

#: The mechanism family of a story factor that names none.
DEFAULT_MECHANISM = "gumbel_max"
#: ... and of a continuous story factor that names none (:mod:`cvaeq.mechanisms.continuous`).
CONTINUOUS_MECHANISM = "continuous"


class _Wrapped(dist.TorchDistribution):
    """A plain ``torch.distributions`` object made usable by ``pyro.sample``."""

    def __init__(self, base: torch.distributions.Distribution) -> None:
        self.base = base
        super().__init__(base.batch_shape, base.event_shape, validate_args=False)

    def sample(self, sample_shape=torch.Size()):
        return self.base.sample(sample_shape)

    def log_prob(self, value):
        return self.base.log_prob(value)


#: Noise priors a :class:`NoisePriors` keeps (mechanism and particle count pairs) before starting afresh.
PRIORS_KEPT = 256


class NoisePriors:
    """Mechanisms' batched noise priors as Pyro distributions, each built once
    per mechanism and particle count (a Pyro distribution costs ~0.3 ms to
    build, more than a query's whole factor arithmetic).

    Keyed by the mechanism object itself (an entry holds it, so it cannot be
    mistaken for another), since a mechanism's noise prior depends on nothing
    else: one store can be shared by any SCMs (an SCM and the worlds
    :func:`~cvaeq.engine.intervene` derives from it) and gives the same prior
    whichever of them asks first.
    """

    def __init__(self) -> None:
        self._kept: dict[tuple[int, int], tuple[Mechanism, dist.TorchDistribution]] = {}

    def get(self, mechanism: Mechanism, num_particles: int) -> dist.TorchDistribution:
        """``mechanism.noise_prior(num_particles)``, built once, made a Pyro distribution."""
        key = (id(mechanism), num_particles)
        hit = self._kept.get(key)
        if hit is not None and hit[0] is mechanism:
            return hit[1]
        d = mechanism.noise_prior(num_particles)
        d = d if isinstance(d, TorchDistributionMixin) else _Wrapped(d)
        if len(self._kept) >= PRIORS_KEPT:
            self._kept.clear()
        self._kept[key] = (mechanism, d)
        return d


class SCM:
    """A causal graph and a mechanism per node, possibly under interventions.

    :param graph: the DAG (:class:`cvaeq.graph.CausalGraph`).
    :param mechanisms: ``{node: mechanism}`` for every node; each mechanism's
        ``parents`` must be the node's parents in ``graph``.
    :param interventions: ``{node: value}`` (unbatched values); normally made by
        :func:`cvaeq.engine.intervene`, not given directly.
    :param world: the :class:`~cvaeq.world.World` whose factors are nodes, if
        any (it gives numeric factors their values for expectations).
    :param noise_priors: the :class:`NoisePriors` store to use (default: a new
        one); :meth:`with_interventions` hands its own to the SCM it derives.
    """

    def __init__(
        self,
        graph: CausalGraph,
        mechanisms: Mapping[str, Mechanism],
        interventions: Mapping[str, Tensor] | None = None,
        world=None,
        noise_priors: NoisePriors | None = None,
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
        self.noise_priors = noise_priors if noise_priors is not None else NoisePriors()

    def with_interventions(self, interventions: Mapping[str, Tensor]) -> SCM:
        """The same graph and mechanisms under ``interventions`` (checked ones:
        :func:`cvaeq.engine.intervene` is the way to get here), sharing this
        SCM's noise priors, which the interventions do not change."""
        return SCM(self.graph, self.mechanisms, interventions, world=self.world, noise_priors=self.noise_priors)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes in topological order."""
        return self.graph.order

    def __repr__(self) -> str:
        do = f", do={sorted(self.interventions)}" if self.interventions else ""
        return f"SCM(nodes={list(self.nodes)}{do})"

    def noise_prior(self, node: str, num_particles: int) -> dist.TorchDistribution:
        """The batched noise prior of ``node``, as a Pyro distribution (built
        once per mechanism and particle count, :class:`NoisePriors`)."""
        return self.noise_priors.get(self.mechanisms[node], num_particles)

    def model(self, num_particles: int) -> dict[str, Tensor]:
        """The SCM as a Pyro model over ``num_particles`` particles; returns ``{node: value}``.

        The walk (:mod:`cvaeq.walk`) under :class:`PyroSites`: every node's
        noise is a ``pyro.sample`` site and its value a ``pyro.deterministic``
        one; the walk applies the SCM's interventions (the value site of an
        intervened node records the constant). Pyro's own handlers still
        compose: ``poutine.do`` on a value site, ``poutine.condition`` on the
        noise sites.
        """
        return walk(self, PyroSites(self), num_particles).values

    def sample(self, num_particles: int, seed: int | None = None) -> dict[str, Tensor]:
        """Forward samples of every node (from the interventional model if intervened)."""
        if seed is None:
            return self.model(num_particles)
        from .engine.particles import checked_seed

        seed = checked_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only, as in engine.infer
            return self.model(num_particles)


def build_scm(
    story,
    factor_logits: Mapping[str, Tensor] | None = None,
    image_model: ImageModel | None = None,
    laws: Mapping[str, object] | None = None,
) -> SCM:
    """The SCM of a story: its factor mechanisms, a Gaussian Z and, given a model, X.

    :param story: a :class:`cvaeq.story.Story`.
    :param factor_logits: optional ``{factor: logits [*parent sizes, size]}``
        replacing the story's tables (e.g. fitted by the trained model).
    :param image_model: an image model (:mod:`cvaeq.image_model`); without
        one the SCM has no image node X (factor-level queries only).
    :param laws: optional ``{continuous factor: law}`` replacing the story's
        (a :class:`~cvaeq.invertible.Law` or its JSON table, e.g. fitted by
        :func:`cvaeq.invertible.fit_law` and kept in a checkpoint).

    Each factor's family is the story's ``mechanism`` for it (default
    ``"gumbel_max"``), built as ``factory(parents=..., probs=table)``; a
    continuous factor's is ``"continuous"`` unless named, built as
    ``factory(parents=..., law=..., kinds=..., low=..., high=...)``. The
    image's mechanism is the registered image mechanism of the model's pixel
    kind (``bernoulli`` for binary worlds, ``discretised_logistic`` for 8-bit
    ones; :func:`cvaeq.plugins.image_mechanism_for`).
    """
    from .plugins import get_mechanism_family
    from .story import IMAGE, LATENT

    factor_logits, laws = _overrides(story.world, factor_logits, laws)
    chosen = getattr(story, "mechanisms", {}) or {}
    mechanisms: dict[str, Mechanism] = {}
    for f in story.factors:
        if f in story.world.continuous:
            mechanisms[f] = _continuous_mechanism(story, f, laws.get(f), chosen.get(f, CONTINUOUS_MECHANISM))
            continue
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
        mechanisms[IMAGE] = _image_mechanism(story, image_model)
    else:
        graph = CausalGraph(
            [(u, v) for u, v in graph.edges if v != IMAGE], nodes=[n for n in graph.order if n != IMAGE]
        )
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


def _image_mechanism(story, image_model) -> Mechanism:
    """The image's mechanism: the registered one of the model's pixel kind, over every factor and Z.

    In a world with continuous factors it is told their intervals (``bounds``),
    so q(continuous factor | X) proposes within them."""
    from .plugins import image_mechanism_for
    from .story import IMAGE

    world = story.world
    mechanism = image_mechanism_for(image_model, world)(
        image_model=image_model, parents=story.graph.parents(IMAGE), factors=world.names, shape=world.image_shape
    )
    if world.continuous:
        bounds = {f: (world.factor(f).low, world.factor(f).high) for f in world.continuous}
        with contextlib.suppress(AttributeError):  # a plugin's mechanism that keeps no attributes
            setattr(mechanism, "bounds", bounds)  # noqa: B010 (not every Mechanism declares it)
    return mechanism


def _overrides(world, factor_logits, laws) -> tuple[dict, dict]:
    """``factor_logits`` and ``laws`` as dicts, each naming only factors of its kind."""
    factor_logits, laws = dict(factor_logits or {}), dict(laws or {})
    unknown = [f for f in factor_logits if f not in world.discrete]
    if unknown:
        raise MechanismError(
            f"factor_logits names {unknown[0]!r}, not a factor with classes; those: {', '.join(world.discrete)}"
        )
    unknown = [f for f in laws if f not in world.continuous]
    if unknown:
        raise MechanismError(
            f"laws names {unknown[0]!r}, not a continuous factor; continuous: {', '.join(world.continuous) or 'none'}"
        )
    return factor_logits, laws


def _continuous_mechanism(story, factor: str, law, family_name: str) -> Mechanism:
    """The mechanism of a continuous story factor: the family's ``(parents, law, kinds, low, high)``."""
    from .invertible import Law, LawError
    from .plugins import get_mechanism_family

    parents = story.parents(factor)
    if law is None:
        law = story.law(factor)
    elif not isinstance(law, Law):
        table = dict(law)
        given = table.pop("parents", list(parents))
        if list(given) != list(parents):
            raise MechanismError(f"the law of {factor!r} reads {given}; the story's parents are {list(parents)}")
        try:
            law = Law.from_dict(table, parents)
        except LawError as e:
            raise MechanismError(f"the law of {factor!r}: {e}") from None
    if tuple(law.parents) != tuple(parents):
        raise MechanismError(f"the law of {factor!r} reads {law.parents}; the story's parents are {parents}")
    spec = story.world.factor(factor)
    family = get_mechanism_family(family_name)
    try:
        m = family(parents=parents, law=law, kinds=story.kinds(factor), low=spec.low, high=spec.high)
    except TypeError:  # a family for factors with classes: (parents, probs) only
        raise MechanismError(
            f"mechanism {family.name!r} cannot be the mechanism of {factor!r}, a continuous factor: it takes a "
            "table; name a continuous family (continuous) or none"
        ) from None
    if not getattr(m, "continuous", False) or getattr(m, "event_dim", None) != 0:
        from .errors import PluginError

        raise PluginError(
            f"plugin {family.plugin!r} (mechanism {family.name!r}, node {factor!r}): built a mechanism that is not "
            "continuous (continuous = True, event_dim 0) for a continuous factor; name a continuous family"
        )
    return m


def _builtin_plugins() -> tuple[str, ...]:
    from .plugins import DEFAULT_PLUGINS

    return DEFAULT_PLUGINS


def scm_from_story(story) -> SCM:
    """The factor-level SCM of a story (its tables, a Gaussian Z, no image)."""
    return build_scm(story)
