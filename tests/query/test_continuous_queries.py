"""Queries about continuous factors: evidence, do(), E[], interval events, quantiles and histograms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.engine import Result
from cvaeq.errors import QueryError
from cvaeq.query import parse, resolve
from cvaeq.query.answer import ask
from cvaeq.query.syntax import P, do, event
from cvaeq.story import load_story

MORPHO = load_story("morphomnist")


def planted(values, weights) -> Result:
    s = torch.tensor(values, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    return Result(("v",), {"v": s}, {"v": s}, w, 1.0, "observational", {}, continuous=("v",))


def test_weighted_quantiles_are_the_inverse_cdf_right_at_the_bounds():
    # sorted: 1 (0.2), 2 (0.3), 3 (0.1), 4 (0.4); 0 and 9 weigh nothing
    r = planted([3.0, 1.0, 9.0, 2.0, 0.0, 4.0], [0.1, 0.2, 0.0, 0.3, 0.0, 0.4])
    q = r.quantiles("v", (0.0, 0.2, 0.2000001, 0.5, 0.55, 0.6, 0.61, 1.0))
    assert list(q.values()) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]


def test_quantiles_at_cumulative_weights_that_do_not_add_up_exactly():
    r = planted(list(range(10)), [0.1] * 10)  # the cumulative sums are 0.30000000000000004, 0.9999999999999999, ...
    q = r.quantiles("v", (0.1, 0.3, 0.7, 1.0))
    assert list(q.values()) == [0.0, 2.0, 6.0, 9.0]
    with pytest.raises(QueryError, match="in \\[0, 1\\]"):
        r.quantiles("v", (1.5,))


def test_the_histogram_spans_the_values_and_sums_to_one():
    r = planted([0.0, 1.0, 2.0, 10.0], [0.25, 0.25, 0.25, 0.25])
    edges, probs = r.histogram("v", bins=5)
    assert edges == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert probs == [0.5, 0.25, 0.0, 0.0, 0.25]  # 2.0 is in the second bin; the last bin holds 10
    assert planted([3.0, 3.0], [0.5, 0.5]).histogram("v") == ([3.0, 3.0], [1.0])


def test_interval_events_parse_print_and_equal_their_builders():
    q = parse("P(intensity > 200, thickness<=2.5 | do(digit=3))")
    assert q == P(event("intensity", 200, ">"), event("thickness", 2.5, "<="), do(digit=3))
    assert q.to_text() == "P(intensity > 200, thickness <= 2.5 | do(digit=3))"
    assert parse(q.to_text()) == q
    assert parse("P(intensity >= 200)") != parse("P(intensity > 200)")


def test_continuous_evidence_and_do_are_floats_taken_exactly():
    r = resolve(parse("P(intensity | do(thickness=4), thickness=2.3, intensity=150)"), MORPHO)
    assert r.interventions == {"thickness": 4.0} and r.evidence == {"thickness": 2.3, "intensity": 150.0}
    a = ask("P(intensity | do(thickness=4), thickness=2.3, intensity=150)", story="morphomnist", samples=10)
    assert a.result.factual["intensity"].dtype == torch.float64
    y = (150 - 64) / 191
    closed = 64 + 191 / (1 + math.exp(-(math.log(y / (1 - y)) + 2 * (4 - 2.3))))
    assert a.expectation["intensity"] == pytest.approx(closed, rel=1e-9)


def test_the_expectation_of_a_counterfactual_difference():
    a = ask("E[intensity @ do(thickness=4) - intensity | thickness=2, intensity=150]", story="morphomnist")
    y = (150 - 64) / 191
    closed = 64 + 191 / (1 + math.exp(-(math.log(y / (1 - y)) + 4))) - 150
    assert a.expectation["intensity @ do(thickness=4) - intensity"] == pytest.approx(closed, rel=1e-9)


def test_the_distribution_of_a_continuous_target_in_json():
    a = ask("P(intensity | do(thickness=4))", story="morphomnist", samples=4000, seed=0)
    d = json.loads(a.to_json())
    assert list(d["quantiles"]["intensity"]) == ["5%", "25%", "50%", "75%", "95%"]
    qs = list(d["quantiles"]["intensity"].values())
    assert qs == sorted(qs) and 64 < qs[0] and qs[-1] < 255
    # the law's median under do(thickness=4): 64 + 191 sigmoid(3); MC sd of the median ~0.05
    assert d["quantiles"]["intensity"]["50%"] == pytest.approx(64 + 191 / (1 + math.exp(-3)), abs=0.3)
    h = d["histogram"]["intensity"]
    assert len(h["edges"]) == 21 and len(h["probabilities"]) == 20
    assert sum(h["probabilities"]) == pytest.approx(1, abs=1e-9)
    assert "distribution" not in d and "intensity" in d["expectation"]


def test_an_interval_event_is_the_law_s_probability():
    """P(intensity > 200 | do(thickness=3)) = P(0.5 e + 1 > logit(136 / 191)) exactly, by the normal's tail (0.575)."""
    a = ask("P(intensity > 200 | do(thickness=3))", story="morphomnist", samples=20000, seed=0)
    y = 136 / 191
    from scipy.stats import norm

    exact = norm.sf((math.log(y / (1 - y)) - 1) / 0.5)
    assert a.probability == pytest.approx(exact, abs=0.01)  # MC sd sqrt(p(1-p)/20000) < 0.004


def test_an_interval_event_on_a_grid_factor_compares_its_numbers():
    story = load_story("default")
    a = ask("P(scale > 0.7 | shape=heart)", story="default", samples=20000, seed=0)
    grid = story.world.values["scale"]
    exact = float(story.table("scale")[2][grid > 0.7].sum())
    assert a.probability == pytest.approx(exact, abs=0.015)


@pytest.mark.parametrize(
    "text, message",
    [
        ("P(intensity=200 | do(thickness=4))", "intensity is continuous: intensity=200 has probability 0; ask an interval"),
        ("P(digit > 3)", "digit > ... compares numbers, and digit takes names"),
        ("P(intensity | thickness=thick)", "thickness takes a number (any number from 0 to 12 px), got the name 'thick'"),
        ("P(intensity | do(thickness=13))", "thickness=13 is off the domain"),
        ("P(digit | intensity @ do(thickness=3) = 100)", "has probability 0; give evidence on a continuous factor in the factual"),
    ],
)
def test_questions_about_continuous_factors_that_have_no_answer_say_why(text, message):
    with pytest.raises(QueryError) as info:
        ask(text, story="morphomnist", samples=10)
    assert message in str(info.value)


def test_impossible_continuous_evidence_is_an_error_not_nan():
    with pytest.raises(QueryError, match="the evidence is impossible under the model"):
        ask("P(thickness | intensity=50)", story="morphomnist", samples=100)  # DeepSCM's intensity is > 64


def test_the_text_table_shows_quantiles_and_a_histogram():
    out = CliRunner().invoke(main, ["query", "P(thickness | do(digit=3))", "--story", "morphomnist", "--seed", "0"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.startswith("thickness  quantiles: 5% ") for line in lines)
    assert any(line.split()[:3] == ["from", "to", "probability"] for line in lines)
    bars = [line for line in lines if line.count("#") and line.strip()[0].isdigit()]
    assert bars  # the histogram's rows with bars
    again = CliRunner().invoke(main, ["query", "P(thickness | do(digit=3))", "--story", "morphomnist", "--seed", "0"])
    assert again.output == out.output  # the same seed, the same answer


def test_the_same_seed_gives_the_same_continuous_answer():
    a = ask("P(intensity | thickness=2.5)", story="morphomnist", samples=500, seed=7)
    b = ask("P(intensity | thickness=2.5)", story="morphomnist", samples=500, seed=7)
    assert a.quantiles == b.quantiles and np.array_equal(a.result.samples["intensity"], b.result.samples["intensity"])


def test_interval_evidence_parses_prints_and_equals_its_builder():
    from cvaeq.query.syntax import observe

    q = parse("P(digit | intensity > 200, thickness<=3.5)")
    assert q == P("digit", observe("intensity", 200, ">"), observe("thickness", 3.5, "<="))
    assert q.to_text() == "P(digit | intensity > 200, thickness <= 3.5)" and parse(q.to_text()) == q
    with pytest.raises(QueryError, match="not to an interval"):
        from cvaeq.query.syntax import Assignment, Do, Number

        Do((Assignment("thickness", Number(3.0), op=">"),))


def test_interval_evidence_on_a_grid_factor_is_bayes_rule_on_the_tables():
    story = load_story("default")
    a = ask("P(shape | scale >= 0.9)", story="default", samples=40000, seed=0)
    grid = story.world.values["scale"]
    joint = story.table("shape") * story.table("scale")[:, grid >= 0.9 - 1e-9].sum(1)
    exact = joint / joint.sum()
    got = [a.distribution["shape"][k] for k in ("square", "ellipse", "heart")]
    assert got == pytest.approx(exact.tolist(), abs=0.02)  # ESS ~12,000: a probability's sd < 0.005
    assert a.rung == "observational"


def test_interval_evidence_on_a_continuous_factor_matches_the_story_s_own_draws():
    """P(thickness > 3 | intensity > 200) by the engine against the fraction among 400,000 draws of the story."""
    x = MORPHO.sample(400000, np.random.default_rng(5))
    bright = x[:, 2] > 200
    exact = float((x[bright, 1] > 3).mean())  # sd ~0.002
    a = ask("P(thickness > 3 | intensity > 200)", story="morphomnist", samples=40000, seed=0)
    assert a.probability == pytest.approx(exact, abs=0.02)  # ESS ~9,000: sd ~0.005


def test_interval_evidence_with_do_is_a_counterfactual_and_an_empty_interval_is_impossible():
    r = resolve(parse("P(intensity | do(thickness=4), thickness > 2)"), MORPHO)
    assert r.rung == "counterfactual" and r.scenario_evidence[0].value == (">", 2.0)
    with pytest.raises(QueryError, match="no particle of 100 satisfies"):
        ask("P(intensity | thickness > 2, thickness < 1)", story="morphomnist", samples=100)


def test_a_notebook_shows_a_continuous_target_s_quantiles_and_histogram():
    a = ask("P(thickness | do(digit=3))", story="morphomnist", samples=500, seed=0)
    html = a._repr_html_()
    assert "quantiles: 5% " in html and "95% " in html
    edges = a.histogram["thickness"]["edges"]
    assert f"{edges[0]:.4g} to {edges[1]:.4g}" in html
