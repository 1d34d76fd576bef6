"""Several worlds over one abduction: PN, PS, PNS and ETT against the exact
answer (the Gumbel noise integrated, cvaeq.testing.exact), the identities
that must hold (hypothesis), and agreement with the one-world engine."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvaeq.engine import infer, infer_scenarios
from cvaeq.errors import QueryError
from cvaeq.scm import build_scm
from cvaeq.story import load_story
from cvaeq.testing import SCMSpec, enumerate_marginals, random_scm
from cvaeq.testing.exact import gumbel_pair, probability, world_joint

N = 20_000
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def tolerance(n_eff: float, p: float = 0.5) -> float:
    """Five standard errors of a proportion ``p`` from ``n_eff`` samples (at least 0.005)."""
    return max(5 * (max(p * (1 - p), 0.01) / n_eff) ** 0.5, 0.005)


def small_story(spec: SCMSpec):
    scm, tables = random_scm("gumbel_max", spec)
    parents = {v: scm.graph.parents(v) for v in scm.nodes}
    return scm, tables, parents


# A confounded treatment: v0 -> v1 (X), v0 -> v2 (Y), v1 -> v2.
CONFOUNDED = SCMSpec(sizes=(2, 2, 3), edges=((0, 1), (0, 2), (1, 2)), seed=11)
# A direct effect only: v0 (X) -> v1 (Y).
DIRECT = SCMSpec(sizes=(3, 4), edges=((0, 1),), seed=5)


def test_exact_pair_has_the_two_marginals_and_matches_sampling():
    rng = np.random.default_rng(0)
    a, b = np.log(rng.dirichlet(np.ones(4))), np.log(rng.dirichlet(np.ones(4)))
    m = gumbel_pair(a, b)
    assert np.allclose(m.sum(1), np.exp(a), atol=1e-10) and np.allclose(m.sum(0), np.exp(b), atol=1e-10)
    g = rng.gumbel(size=(200_000, 4))
    counts = np.zeros((4, 4))
    np.add.at(counts, (np.argmax(a + g, 1), np.argmax(b + g, 1)), 1)
    assert np.abs(counts / len(g) - m).max() < 0.005


@pytest.mark.parametrize("spec, x, y", [(CONFOUNDED, "v1", "v2"), (DIRECT, "v0", "v1")], ids=["confounded", "direct"])
def test_pn_ps_pns_ett_match_the_exact_answer(spec, x, y):
    scm, tables, parents = small_story(spec)
    order = scm.nodes
    xs, ys = scm.mechanisms[x].size, scm.mechanisms[y].size
    cases = [(a, b, c, d) for a in range(xs) for c in range(xs) if a != c for b in range(ys) for d in range(ys)][:6]
    for x1, y1, x2, y2 in cases:
        # PN = P(Y_{x'} = y' | X = x, Y = y)
        exact = probability(world_joint(tables, parents, order, [{}, {x: x2}]),
                            lambda w: w[1][y] == y2, lambda w: w[0][x] == x1 and w[0][y] == y1)
        r = infer_scenarios(scm, {"cf": (y, {x: x2})}, {x: x1, y: y1}, N, seed=1)
        assert abs(r.probability({"cf": y2}) - exact) < tolerance(r.ess, exact), ("PN", x1, y1, x2, y2)
        # PS = P(Y_x = y | X = x', Y = y')
        exact = probability(world_joint(tables, parents, order, [{}, {x: x1}]),
                            lambda w: w[1][y] == y1, lambda w: w[0][x] == x2 and w[0][y] == y2)
        r = infer_scenarios(scm, {"cf": (y, {x: x1})}, {x: x2, y: y2}, N, seed=2)
        assert abs(r.probability({"cf": y1}) - exact) < tolerance(r.ess, exact), ("PS", x1, y1, x2, y2)
        # PNS = P(Y_x = y, Y_{x'} = y')
        exact = probability(world_joint(tables, parents, order, [{x: x1}, {x: x2}]),
                            lambda w: w[0][y] == y1 and w[1][y] == y2)
        r = infer_scenarios(scm, {"a": (y, {x: x1}), "b": (y, {x: x2})}, {}, N, seed=3)
        assert abs(r.probability({"a": y1, "b": y2}) - exact) < tolerance(r.ess, exact), ("PNS", x1, y1, x2, y2)
    # ETT = E[Y_x - Y_{x'} | X = x] (on class indices), by consistency E[Y - Y_{x'} | X = x].
    for x1 in range(xs):
        x2 = (x1 + 1) % xs
        joint = world_joint(tables, parents, order, [{}, {x: x2}])
        given = [(p, w) for p, w in joint if w[0][x] == x1]
        exact = sum(p * (w[0][y] - w[1][y]) for p, w in given) / sum(p for p, _ in given)
        r = infer_scenarios(scm, {"a": (y, {x: x1}), "b": (y, {x: x2})}, {x: x1}, N, seed=4)
        got = float(((r.samples["a"] - r.samples["b"]).double() * r.weights).sum())
        assert abs(got - exact) < 5 * (ys - 1) / r.ess ** 0.5, ("ETT", x1, x2, got, exact)


def test_default_story_pn_matches_the_exact_answer():
    story = load_story()
    scm = build_scm(story)
    table = story.probs("scale", np.array([[s, 0, 0, 0, 0] for s in range(3)]))  # rows: square, ellipse, heart
    m = gumbel_pair(np.log(table[2]), np.log(table[0]))  # heart -> square
    r = infer_scenarios(scm, {"cf": ("scale", {"shape": 0})}, {"shape": 2, "scale": 0}, N, seed=0)
    for k in range(6):
        exact = m[0, k] / table[2, 0]
        assert abs(r.probability({"cf": k}) - exact) < tolerance(r.ess, exact)
    # counterfactual stability, by hand: a big heart would have been a big square, always
    r = infer_scenarios(scm, {"cf": ("scale", {"shape": 0})}, {"shape": 2, "scale": 5}, 2000, seed=0)
    assert r.probability({"cf": 5}) == pytest.approx(1.0, abs=1e-12)


@st.composite
def binary_cases(draw):
    """A small SCM (2-4 binary or ternary nodes) with an edge X -> Y, and values x, x', y, y'."""
    n = draw(st.integers(2, 4))
    sizes = tuple(draw(st.lists(st.integers(2, 3), min_size=n, max_size=n)))
    i = draw(st.integers(0, n - 2))
    j = draw(st.integers(i + 1, n - 1))
    pairs = [(a, b) for b in range(n) for a in range(b) if (a, b) != (i, j)]
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    edges = tuple(sorted({(i, j), *(p for p, k in zip(pairs, keep) if k)}))
    spec = SCMSpec(sizes, edges, draw(st.integers(0, 2**31 - 1)))
    x1, x2 = draw(st.integers(0, sizes[i] - 1)), draw(st.integers(0, sizes[i] - 1))
    y1, y2 = draw(st.integers(0, sizes[j] - 1)), draw(st.integers(0, sizes[j] - 1))
    return spec, f"v{i}", f"v{j}", x1, y1, x2, y2


@SETTINGS
@given(binary_cases())
def test_pns_is_at_most_each_of_its_marginals_on_the_same_particles(case):
    spec, x, y, x1, y1, x2, y2 = case
    scm, _, _ = small_story(spec)
    r = infer_scenarios(scm, {"a": (y, {x: x1}), "b": (y, {x: x2})}, {}, 2000, seed=spec.seed % 1000)
    pns = r.probability({"a": y1, "b": y2})
    assert pns <= min(r.probability({"a": y1}), r.probability({"b": y2})) + 1e-12
    assert pns >= r.probability({"a": y1}) + r.probability({"b": y2}) - 1 - 1e-12


@SETTINGS
@given(binary_cases())
def test_a_world_setting_the_factual_value_is_the_factual_world(case):
    """Consistency: with X = x observed, Y @ do(X = x) equals Y, particle by particle."""
    spec, x, y, x1, y1, _, _ = case
    scm, _, _ = small_story(spec)
    evidence = {x: x1} if spec.seed % 2 else {x: x1, y: y1}
    targets = {v: (v, {}) for v in scm.nodes}
    targets.update({f"{v} @ do": (v, {x: x1}) for v in scm.nodes})
    r = infer_scenarios(scm, targets, evidence, 500, seed=spec.seed % 1000)
    for v in scm.nodes:
        assert torch.equal(r.samples[v], r.samples[f"{v} @ do"]), v


@SETTINGS
@given(binary_cases())
def test_tian_pearl_bounds_hold_under_the_story(case):
    """PN and PNS lie within the bounds of Tian & Pearl (2000), computed from
    the story's own observational and interventional distributions, for a
    binary treatment and outcome (x, y against x', y'): exactly for the
    exact answer, within sampling error for the engine's."""
    spec, x, y, _, _, _, _ = case
    spec = SCMSpec(tuple(2 if v in (x, y) else s for v, s in zip(spec.names, spec.sizes)), spec.edges, spec.seed)
    scm, tables, parents = small_story(spec)
    order = scm.nodes
    x1, x2, y1, y2 = 1, 0, 1, 0
    obs = world_joint(tables, parents, order, [{}])
    p_xy = {(a, b): probability(obs, lambda w: w[0][x] == a and w[0][y] == b) for a in (0, 1) for b in (0, 1)}
    p_y = p_xy[(x1, y1)] + p_xy[(x2, y1)]
    y_x = enumerate_marginals(scm, tables, {x: x1})[y][y1]       # P(y_x)
    y_x2 = enumerate_marginals(scm, tables, {x: x2})[y][y1]      # P(y_{x'})
    pn_lo = max(0.0, (p_y - y_x2) / p_xy[(x1, y1)])
    pn_hi = min(1.0, ((1 - y_x2) - p_xy[(x2, y2)]) / p_xy[(x1, y1)])
    pns_lo = max(0.0, y_x - y_x2, p_y - y_x2, y_x - p_y)
    pns_hi = min(y_x, 1 - y_x2, p_xy[(x1, y1)] + p_xy[(x2, y2)], y_x - y_x2 + p_xy[(x1, y2)] + p_xy[(x2, y1)])
    pn = probability(world_joint(tables, parents, order, [{}, {x: x2}]),
                     lambda w: w[1][y] == y2, lambda w: w[0][x] == x1 and w[0][y] == y1)
    pns = probability(world_joint(tables, parents, order, [{x: x1}, {x: x2}]),
                      lambda w: w[0][y] == y1 and w[1][y] == y2)
    assert pn_lo - 1e-9 <= pn <= pn_hi + 1e-9
    assert pns_lo - 1e-9 <= pns <= pns_hi + 1e-9
    r = infer_scenarios(scm, {"cf": (y, {x: x2})}, {x: x1, y: y1}, 4000, seed=1)
    est = r.probability({"cf": y2})
    assert pn_lo - tolerance(r.ess) <= est <= pn_hi + tolerance(r.ess)
    r = infer_scenarios(scm, {"a": (y, {x: x1}), "b": (y, {x: x2})}, {}, 4000, seed=2)
    est = r.probability({"a": y1, "b": y2})
    assert pns_lo - tolerance(r.ess) <= est <= pns_hi + tolerance(r.ess)


def test_one_world_is_infer_bit_for_bit():
    scm = build_scm(load_story())
    evidence = {"shape": torch.tensor(2), "scale": torch.tensor(0)}
    a = infer(scm, ["scale", "posY"], {"shape": 0}, evidence, 3000, seed=3)
    b = infer_scenarios(scm, {"s": ("scale", {"shape": 0}), "p": ("posY", {"shape": 0})}, evidence, 3000, seed=3)
    assert torch.equal(a.samples["scale"], b.samples["s"]) and torch.equal(a.samples["posY"], b.samples["p"])
    assert torch.equal(a.weights, b.weights) and a.ess == b.ess and b.rung == "counterfactual"


def test_evidence_about_an_intervened_world_conditions_by_weighting():
    """P(scale | scale @ do(shape=square) = 1) against the exact joint of the two worlds."""
    story = load_story()
    scm = build_scm(story)
    table = story.probs("scale", np.array([[s, 0, 0, 0, 0] for s in range(3)]))
    r = infer_scenarios(scm, {"scale": ("scale", {})}, {"shape": 2}, N, seed=5,
                     scenario_evidence=[("scale", {"shape": 0}, 5)])
    m = gumbel_pair(np.log(table[2]), np.log(table[0]))
    exact = m[:, 5] / m[:, 5].sum()
    got = np.array([r.distribution("scale")[k] for k in range(6)])
    assert np.abs(got - exact).max() < tolerance(r.ess)
    assert r.ess < r.abduction_ess  # the particles it ruled out
    with pytest.raises(QueryError, match="no particle of 10 satisfies"):
        infer_scenarios(scm, {"s": ("scale", {})}, {"shape": 2, "scale": 0}, 10,
                     scenario_evidence=[("scale", {"shape": 2}, 5)])
