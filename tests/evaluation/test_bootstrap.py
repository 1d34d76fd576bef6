"""The bootstrap intervals of evaluation figures, on planted data whose answer is known."""

import numpy as np
import pytest

from cvaeq.evaluation.bootstrap import (
    figure_intervals,
    mean_interval,
    resample_counts,
    resampled_means,
    with_intervals,
)


def test_each_resample_draws_n_pictures_with_replacement():
    c = resample_counts(7, 50, seed=3)
    assert c.shape == (50, 7) and (c.sum(1) == 7).all() and (c >= 0).all()
    assert (c == resample_counts(7, 50, seed=3)).all()  # the same seed, the same draws
    assert not (c == resample_counts(7, 50, seed=4)).all()


def test_resamples_drawn_in_chunks_are_the_draws_of_one_call():
    import cvaeq.evaluation.bootstrap as B

    n, resamples = 9, 3 * B.CHUNK + 7  # three full chunks and a part
    one = np.random.default_rng([4, 0xB007]).multinomial(n, np.full(n, 1 / n), size=resamples)
    assert (resample_counts(n, resamples, seed=4) == one).all()
    assert all(len(c) <= B.CHUNK for c in B.resample_chunks(n, resamples, seed=4))


def test_the_interval_of_a_normal_mean_has_the_textbook_width():
    # planted: 400 draws of N(2, 1); the 95% interval of the mean is 2 +- 1.96/sqrt(400) = +-0.098
    v = np.random.default_rng(0).normal(2.0, 1.0, 400)
    lo, hi = mean_interval(v, resamples=2000, seed=1)
    assert lo < v.mean() < hi
    # half-width within 15%: the bootstrap's sd of a mean is sd(v)/sqrt(n) up to its own
    # Monte Carlo error (2,000 resamples: ~3%) and sd(v)'s sampling error (~4% at n = 400)
    assert (hi - lo) / 2 == pytest.approx(1.96 / 20, rel=0.15)


def test_95_percent_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    covered = 0
    trials = 200
    for t in range(trials):
        v = rng.exponential(1.0, 60)  # skewed, true mean 1
        lo, hi = mean_interval(v, resamples=400, seed=t)
        covered += lo <= 1.0 <= hi
    # the percentile bootstrap undercovers a little on skewed small samples (about 93% here);
    # binomial sd at 200 trials is 1.6 points: a planted bug (a 68% interval, or none) falls far outside
    assert 0.86 <= covered / trials <= 0.99


def test_intervals_stay_inside_the_bounds_of_a_bounded_figure():
    v = np.r_[np.ones(97), np.zeros(3)]  # an accuracy of 0.97 near its bound 1
    lo, hi = mean_interval(v, seed=0)
    assert 0.0 <= lo < 0.97 < hi <= 1.0
    assert mean_interval(np.zeros(30), seed=0) == (0.0, 0.0)  # composition exactly 0: [0, 0]
    assert mean_interval(np.ones(30), seed=0) == (1.0, 1.0)


def test_a_weighted_mean_is_resampled_with_its_weights():
    # planted: value 0 with weight 1 and value 1 with weight 3, 200 of each: weighted mean 0.75, plain mean 0.5
    v = np.r_[np.zeros(200), np.ones(200)]
    w = np.r_[np.ones(200), np.full(200, 3.0)]
    lo, hi = mean_interval(v, weights=w, seed=0)
    assert lo < 0.75 < hi and lo > 0.6
    counts = resample_counts(400, 300, seed=1)
    weighted = resampled_means(v, counts, w)
    # each resample's weighted mean is its own sum(c w v) / sum(c w)
    c = counts[0]
    assert weighted[0] == pytest.approx((c * w * v).sum() / (c * w).sum(), rel=1e-12)
    with pytest.raises(ValueError):
        resampled_means(v, counts, -w)


def test_a_non_finite_value_gives_no_interval():
    v = np.r_[np.ones(20), np.inf]
    assert mean_interval(v, seed=0) is None
    # a resample that never draws the infinite picture keeps a finite mean
    counts = np.zeros((2, 21), np.int64)
    counts[0, 0] = 21
    counts[1, 20] = 21
    assert resampled_means(v, counts).tolist() == [1.0, np.inf]


def test_derived_figures_are_resampled_jointly_with_their_parts():
    # two rows that always sum to 1: their sum has the interval [1, 1], not the sum of two intervals
    a = np.random.default_rng(2).uniform(size=50)
    rows = {"a": a, "b": 1.0 - a}

    def figures(mean):
        return {"a": mean("a"), "sum": mean("a") + mean("b"), "none": None, "nested": {"b": mean("b")}}

    ci = figure_intervals(figures, rows, resamples=300, seed=0)
    assert ci["sum"] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert ci["a"][0] < a.mean() < ci["a"][1]
    assert ci["nested"]["b"][0] < 1 - a.mean() < ci["nested"]["b"][1]
    assert ci["none"] is None
    with pytest.raises(ValueError):
        figure_intervals(figures, {"a": a, "b": a[:10]})


def test_with_intervals_adds_ci_and_leaves_every_other_key_alone():
    rows = {"x": np.linspace(0, 1, 11)}
    report = {"n": 11, "x": 0.5, "tv": {"interventional": 0.1, "counterfactual": 0.2, "queries": 3}}
    tv = {
        "queries": [
            {"kind": "interventional", "tv": 0.1},
            {"kind": "counterfactual", "tv": 0.1},
            {"kind": "counterfactual", "tv": 0.3},
        ]
    }
    out = with_intervals(report, lambda mean: {"x": mean("x")}, rows, tv, seed=0)
    assert {k: out[k] for k in report} == report
    assert out["ci"]["x"][0] < 0.5 < out["ci"]["x"][1]
    assert out["ci"]["tv"]["interventional"] == [0.1, 0.1]
    assert 0.1 <= out["ci"]["tv"]["counterfactual"][0] < 0.2 < out["ci"]["tv"]["counterfactual"][1] <= 0.3
    assert out["ci_about"] == {
        "method": "percentile bootstrap",
        "over": "test pictures",
        "resamples": 1000,
        "level": 0.95,
        "n": 11,
        "n_tv": {"interventional": 1, "counterfactual": 2},
    }
