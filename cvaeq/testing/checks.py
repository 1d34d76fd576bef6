"""The SCM invariants every categorical mechanism family must satisfy.

Each check takes a family (a registered name, or a factory
``factory(parents=..., probs=table)``) and runs a property test (hypothesis)
over random small DAGs with random tables; a failure raises AssertionError
with hypothesis' smallest counterexample. Run them all with
:func:`check_mechanism_family`, or one per test with :data:`CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings

from ..engine import abduct, intervene, predict
from .scms import SCMSpec, enumerate_marginals, random_scm, resolve_family, scm_specs

if TYPE_CHECKING:
    from ..scm import SCM

__all__ = [
    "CHECKS",
    "check_mechanism_family",
    "check_replay_reproduces_factual",
    "check_do_sets_value",
    "check_non_descendants_keep_factual",
    "check_factual_intervention_changes_nothing",
    "check_interventional_matches_enumeration",
    "check_posterior_matches_rejection",
    "check_log_prob_matches_table",
    "check_abduction_weighs_as_log_prob",
    "check_values_follow_the_protocol",
]

#: Whether a failing check shrinks its counterexample (slower failures, smaller examples).
SHRINK = True


def _factor(scm: SCM, v: str) -> Any:
    """Node ``v``'s mechanism in a random SCM of categorical factors: it has the
    optional members ``size`` and ``log_prob`` that the checks below use."""
    return scm.mechanisms[v]


def _property(max_examples: int):
    """Hypothesis settings for the checks: derandomised (reproducible in CI), no database."""
    phases = tuple(Phase) if SHRINK else tuple(p for p in Phase if p is not Phase.shrink)
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow],
    )


def _rng(spec: SCMSpec, salt: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, salt])


def _world(scm, num: int, seed: int) -> dict[str, torch.Tensor]:
    return scm.sample(num, seed=seed)


def check_replay_reproduces_factual(family, max_examples: int = 12, num_particles: int = 256) -> None:
    """Replaying the abducted noise without intervention reproduces the factual values exactly.

    Evidence on every node (one factual world per particle), then on a random
    subset: in both, ``predict(scm, abduct(scm, evidence))`` equals the
    particles' factual values, and observed nodes equal the evidence.
    """
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, _ = random_scm(factory, spec)
        world = _world(scm, num_particles, spec.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            p = abduct(scm, world, num_particles, resample_below=0)
            replay = predict(scm, p)
            for v in scm.nodes:
                assert torch.equal(replay[v], world[v]), f"replaying {v} changed factual values"
            subset = [v for v in scm.nodes if _rng(spec, 1).random() < 0.5] or [scm.nodes[-1]]
            evidence = {v: world[v][0] for v in subset}
            p = abduct(scm, evidence, num_particles, resample_below=0)
            replay = predict(scm, p)
        for v in scm.nodes:
            assert torch.equal(replay[v], p.values[v]), f"replaying {v} (partial evidence) changed its value"
        for v in subset:
            assert bool((replay[v] == evidence[v]).all())

    run()


def check_do_sets_value(family, max_examples: int = 12, num_particles: int = 256) -> None:
    """Under ``do(v = a)``, v equals a in every particle, whatever its former parents were.

    Two factual worlds that differ in v's parents (evidence on all nodes) give
    the same v under the intervention: a point mass at a.
    """
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, _ = random_scm(factory, spec)
        rng = _rng(spec, 2)
        v = scm.nodes[int(rng.integers(len(scm.nodes)))]
        a = int(rng.integers(_factor(scm, v).size))
        world = _world(scm, num_particles, spec.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            p = abduct(scm, world, num_particles, resample_below=0)
            out = predict(intervene(scm, {v: a}), p)
        assert bool((out[v] == a).all()), f"do({v}={a}) did not set {v}"
        for q in scm.graph.parents(v):  # v no longer varies with its former parents
            for c in world[q].unique():
                assert set(out[v][world[q] == c].tolist()) == {a}

    run()


def check_non_descendants_keep_factual(family, max_examples: int = 12, num_particles: int = 256) -> None:
    """In a counterfactual, nodes that are not descendants of the intervened node keep their factual values."""
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, _ = random_scm(factory, spec)
        rng = _rng(spec, 3)
        v = scm.nodes[int(rng.integers(len(scm.nodes)))]
        a = int(rng.integers(_factor(scm, v).size))
        world = _world(scm, num_particles, spec.seed)
        observed = {u: world[u] for u in scm.nodes if rng.random() < 0.7}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            p = abduct(scm, observed, num_particles, resample_below=0)
            out = predict(intervene(scm, {v: a}), p)
        keep = set(scm.nodes) - scm.graph.descendants(v) - {v}
        for u in keep:
            assert torch.equal(out[u], p.values[u]), f"{u} is no descendant of {v} but changed under do({v}={a})"

    run()


def check_factual_intervention_changes_nothing(family, max_examples: int = 12, num_particles: int = 256) -> None:
    """Intervening with each particle's factual value changes nothing, observed or not."""
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, _ = random_scm(factory, spec)
        rng = _rng(spec, 4)
        world = _world(scm, num_particles, spec.seed)
        observed = {u: world[u][0] for u in scm.nodes if rng.random() < 0.5}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            p = abduct(scm, observed, num_particles, resample_below=0)
            for v in scm.nodes:
                out = predict(intervene(scm, {v: p.values[v]}), p)
                for u in scm.nodes:
                    assert torch.equal(out[u], p.values[u]), f"do({v}=its factual value) changed {u}"

    run()


def _tolerance(n_eff: float) -> float:
    """Five standard errors of a proportion near 1/2 from ``n_eff`` samples."""
    return 5 * 0.5 / max(n_eff, 1.0) ** 0.5


def _marginal(values: torch.Tensor, weights: torch.Tensor, size: int) -> np.ndarray:
    return torch.zeros(size, dtype=torch.float64).index_add_(0, values.long(), weights.double()).numpy()


def check_interventional_matches_enumeration(family, max_examples: int = 10, num_particles: int = 6000) -> None:
    """Interventional marginals (no evidence) equal brute-force enumeration of the tables."""
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, tables = random_scm(factory, spec)
        rng = _rng(spec, 5)
        do = {}
        if rng.random() < 0.8:
            v = scm.nodes[int(rng.integers(len(scm.nodes)))]
            do[v] = int(rng.integers(_factor(scm, v).size))
        exact = enumerate_marginals(scm, tables, do)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            p = abduct(scm, {}, num_particles)
            out = predict(intervene(scm, do), p)
        for u in scm.nodes:
            est = _marginal(out[u], p.weights, len(exact[u]))
            err = np.abs(est - exact[u]).max()
            assert err < _tolerance(num_particles), f"P({u} | do{do}) off by {err:.3f}: {est} vs exact {exact[u]}"

    run()


def check_posterior_matches_rejection(
    family, max_examples: int = 8, num_particles: int = 3000, num_prior: int = 40000
) -> None:
    """Counterfactuals from abduction match rejection sampling of the noise.

    Rejection: draw noise from the prior, keep the draws that reproduce the
    evidence, replay them under the intervention. Exact abduction must give the
    same counterfactual marginals (checks the whole noise posterior, e.g. the
    top-down truncated Gumbel of the Gumbel-max family).
    """
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs(max_nodes=3))
    def run(spec):
        # The informative case: intervene on a node whose child is observed.
        spec = SCMSpec(spec.sizes, spec.edges or ((0, 1),), spec.seed)
        scm, _ = random_scm(factory, spec)
        rng = _rng(spec, 6)
        world = _world(scm, 1, spec.seed)
        i, j = spec.edges[int(rng.integers(len(spec.edges)))]
        v, child = spec.names[i], spec.names[j]
        observed = {child: world[child][0]}
        if rng.random() < 0.5:
            observed[v] = world[v][0]
        do = {v: int(rng.integers(_factor(scm, v).size))}
        world_do = intervene(scm, do)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            p = abduct(scm, observed, num_particles, resample_below=0)
            cf = predict(world_do, p)
            prior = abduct(scm, {}, num_prior)
            keep = torch.ones(num_prior, dtype=torch.bool)
            for u, val in observed.items():
                keep &= prior.values[u] == val
            n_keep = int(keep.sum())
            assert n_keep > 100, "the evidence is too rare for this check"
            kept = type(prior)(
                noise={u: t[keep] for u, t in prior.noise.items()},
                values={u: t[keep] for u, t in prior.values.items()},
                log_weights=torch.zeros(n_keep, dtype=torch.float64),
                ess=float(n_keep),
            )
            ref = predict(world_do, kept)
        for u in scm.nodes:
            size = _factor(scm, u).size
            a = _marginal(cf[u], p.weights, size)
            b = _marginal(ref[u], kept.weights, size)
            tol = _tolerance(p.ess) + _tolerance(n_keep)
            err = np.abs(a - b).max()
            assert err < tol, f"P({u} | do{do}, {observed}) by abduction {a} vs rejection {b} (n={n_keep})"

    run()


def check_log_prob_matches_table(family, max_examples: int = 10) -> None:
    """A family's ``log_prob`` (if it has one) is the log of its table."""
    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, tables = random_scm(factory, spec)
        for v in scm.nodes:
            m = _factor(scm, v)
            if not callable(getattr(m, "log_prob", None)):
                continue
            t = tables[v]
            grid = np.array(np.meshgrid(*[np.arange(s) for s in t.shape], indexing="ij")).reshape(t.ndim, -1)
            parents = {q: torch.as_tensor(grid[i]) for i, q in enumerate(scm.graph.parents(v))}
            got = m.log_prob(torch.as_tensor(grid[-1]), parents).double().numpy()
            assert np.allclose(got, np.log(t[tuple(grid)]), atol=1e-5), f"log_prob of {v} is not log(table)"

    run()


def check_abduction_weighs_as_log_prob(family, max_examples: int = 10) -> None:
    """A family's ``abduct`` (if it has one) returns its noise with the
    log-weight ``log_prob`` gives, on every (parents, value) of its table, and
    a second abduction in between changes neither (nothing is kept between
    calls); ``abduct_noise``, if given, replays the value too."""
    from ..mechanisms.base import abducted_noise, abduction, can_abduct

    factory = resolve_family(family)

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, tables = random_scm(factory, spec)
        for v in scm.nodes:
            m = _factor(scm, v)
            if not can_abduct(m):
                continue
            t = tables[v]
            grid = np.array(np.meshgrid(*[np.arange(s) for s in t.shape], indexing="ij")).reshape(t.ndim, -1)
            parents = {q: torch.as_tensor(grid[i]) for i, q in enumerate(m.parents)}
            value = torch.as_tensor(grid[-1])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(spec.seed)
                first = abduction(m, value, parents)
                other = abduction(m, value.flip(0), {q: p.flip(0) for q, p in parents.items()})
                noise = abducted_noise(m, value, parents)
            for a, val, par in (
                (first, value, parents),
                (other, value.flip(0), {q: p.flip(0) for q, p in parents.items()}),
            ):
                want = m.log_prob(val, par).double()
                assert torch.equal(a.log_weight.double(), want), f"abduct() of {v} weighs otherwise than log_prob()"
            assert torch.equal(m.assign(parents, noise), value), f"abduct_noise() of {v} does not replay its value"

    run()


def check_values_follow_the_protocol(family, max_examples: int = 12, num_particles: int = 64) -> None:
    """Every value a family's mechanisms give is one the engine takes.

    ``assign`` gives ``int64`` classes ``[S]`` in ``[0, size)``, ``size`` being
    the table's; ``log_prob`` gives ``[S]`` floats, never NaN or ``+inf``;
    ``abduct`` gives noise with the ``S`` particles first. These are the
    checks the core makes of a plugin's mechanisms when it runs them
    (:class:`cvaeq.mechanisms.checked.CheckedMechanism`: there a breach is a
    PluginError for the user); here it is a failing test for the author.
    """
    from ..errors import PluginError
    from ..mechanisms.checked import CheckedMechanism
    from ..scm import SCM

    factory = resolve_family(family)
    label = family if isinstance(family, str) else getattr(factory, "__name__", "family")

    @_property(max_examples)
    @given(scm_specs())
    def run(spec):
        scm, tables = random_scm(factory, spec)
        wrapped = {}
        for v in scm.nodes:
            m = _factor(scm, v)
            size = getattr(m, "size", None)
            assert size == tables[v].shape[-1], (
                f"the mechanism of {v} has size {size!r}, its table {tables[v].shape[-1]}"
            )
            assert getattr(m, "event_dim", None) == 0, f"the mechanism of {v} is not categorical (event_dim 0)"
            wrapped[v] = CheckedMechanism(m, str(label), "under test")
            wrapped[v].node = v
        checked = SCM(scm.graph, wrapped)
        try:
            world = _world(checked, num_particles, spec.seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(spec.seed)
                p = abduct(checked, world, num_particles, resample_below=0)
                predict(checked, p)
                some = {v: world[v][0] for v in scm.nodes[: max(1, len(scm.nodes) // 2)]}
                predict(checked, abduct(checked, some, num_particles, resample_below=0))
        except PluginError as e:
            raise AssertionError(str(e)) from None
        for v in scm.nodes:
            assert world[v].dtype == torch.int64 and tuple(world[v].shape) == (num_particles,), (
                f"{v}: values {world[v].dtype} {tuple(world[v].shape)}, expected int64 ({num_particles},)"
            )

    run()


#: Every check by name, for ``pytest.mark.parametrize``.
CHECKS: dict[str, Callable[..., None]] = {
    "replay_reproduces_factual": check_replay_reproduces_factual,
    "do_sets_value": check_do_sets_value,
    "non_descendants_keep_factual": check_non_descendants_keep_factual,
    "factual_intervention_changes_nothing": check_factual_intervention_changes_nothing,
    "interventional_matches_enumeration": check_interventional_matches_enumeration,
    "posterior_matches_rejection": check_posterior_matches_rejection,
    "log_prob_matches_table": check_log_prob_matches_table,
    "abduction_weighs_as_log_prob": check_abduction_weighs_as_log_prob,
    "values_follow_the_protocol": check_values_follow_the_protocol,
}


def check_mechanism_family(family, max_examples: int | None = None) -> None:
    """Run every check of :data:`CHECKS` on a family (a registered name or a factory).

    >>> check_mechanism_family("gumbel_max", max_examples=2)
    """
    for check in CHECKS.values():
        if max_examples is None:
            check(family)
        else:
            check(family, max_examples=max_examples)
