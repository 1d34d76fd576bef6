"""Resampling follows the story: the empirical joint matches it, the DAG's
conditional independences hold, seeds reproduce, and rows name their images."""

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from cvaeq.worlds.dsprites.factors import FACTORS, LATENT_SIZES, N_IMAGES, SIZES, classes_array_of, indices_of
from cvaeq.data.files import load_grid, write_images
from cvaeq.worlds.dsprites.render import render
from cvaeq.data.resample import load_resampled, resample, save_resampled
from cvaeq.errors import DataError
from cvaeq.story import load_story, story_from_text

N_LARGE = 200_000
#: Bins for the tested variables of an independence test (never for the conditioning set).
BINS = {"shape": 3, "scale": 6, "orientation": 4, "posX": 4, "posY": 4}
ALPHA = 1e-3


@pytest.fixture(scope="module")
def story():
    return load_story("default")


@pytest.fixture(scope="module")
def sample(story):
    return resample(story, N_LARGE, seed=2024).classes


def _normal_rows(means, sd, floor, grid):
    """The story's "normal" form, written out from default.toml's comment: a normal
    over the grid values, normalised, mixed with the uniform by ``floor``."""
    w = np.exp(-0.5 * ((grid[None, :] - np.asarray(means)[:, None]) / sd) ** 2)
    return (1 - floor) * w / w.sum(1, keepdims=True) + floor / len(grid)


def _hand_joint():
    """The default story's joint over the whole grid, shape (3, 6, 40, 32, 32),
    computed here from the numbers of cvaeq/worlds/dsprites/default.toml, not
    by the story code under test."""
    scale_values, pos_values = np.linspace(0.5, 1, 6), np.linspace(0, 1, 32)  # dSprites' grids
    shape = np.array([0.35, 0.35, 0.30])
    scale = np.array([[0.04, 0.06, 0.10, 0.18, 0.27, 0.35],
                      [0.10, 0.20, 0.25, 0.25, 0.12, 0.08],
                      [0.35, 0.27, 0.18, 0.10, 0.06, 0.04]])
    orientation = np.full(40, 1 / 40)
    posx = _normal_rows(0.5 + np.array([-0.22, 0.0, 0.22]), 0.22, 0.10, pos_values)  # [shape, posX]
    means = -0.45 + 1.4 * scale_values[:, None] - 0.2 * pos_values[None, :]  # [scale, posX]
    posy = _normal_rows(means.ravel(), 0.16, 0.05, pos_values).reshape(6, 32, 32)  # [scale, posX, posY]
    return (shape[:, None, None, None, None] * scale[:, :, None, None, None] * orientation[None, None, :, None, None]
            * posx[:, None, None, :, None] * posy[None, :, None, :, :])


@pytest.fixture(scope="module")
def joint():
    return _hand_joint()


def _col(classes, f):
    return classes[:, FACTORS.index(f)]


def _binned(classes, f):
    return _col(classes, f) * BINS[f] // SIZES[f]


def test_joint_is_a_distribution(joint):
    assert joint.shape == tuple(LATENT_SIZES[1:])
    assert joint.sum() == pytest.approx(1.0, abs=1e-9)


def test_the_story_code_gives_the_joint_computed_by_hand(story, joint):
    """Every table the story code builds from default.toml, against the hand computation."""
    p = np.exp(story.log_prob(classes_array_of(np.arange(N_IMAGES)))).reshape(LATENT_SIZES[1:])
    np.testing.assert_allclose(p, joint, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "names", [("shape", "scale"), ("scale", "posY"), ("shape", "posX"), ("posX", "posY"), ("orientation",)]
)
def test_empirical_marginals_match_the_story(sample, joint, names):
    axes = tuple(i for i, f in enumerate(FACTORS) if f not in names)
    expected = joint.sum(axis=axes).ravel() * len(sample)
    cols = [_col(sample, f) for f in FACTORS if f in names]
    sizes = [SIZES[f] for f in FACTORS if f in names]
    observed = np.bincount(np.ravel_multi_index(cols, sizes), minlength=int(np.prod(sizes)))
    assert expected.min() > 5  # every cell is populated enough for the chi-square test
    _, p = stats.chisquare(observed, expected * observed.sum() / expected.sum())
    assert p > ALPHA, f"{names}: the sample does not follow the story (p={p:.2g})"


def test_chi_square_detects_a_wrong_story(sample, joint):
    # The shape x scale counts are far from what independent factors would give.
    observed = np.bincount(_col(sample, "shape") * 6 + _col(sample, "scale"), minlength=18)
    p_shape, p_scale = joint.sum(axis=(1, 2, 3, 4)), joint.sum(axis=(0, 2, 3, 4))
    _, p = stats.chisquare(observed, np.outer(p_shape, p_scale).ravel() * len(sample))
    assert p < 1e-12


def _ci_pvalue(classes, a, b, given):
    """Pearson chi-square test of a ⟂ b | given, pooled over the strata of ``given``.

    Strata too small for the asymptotics (fewer than 5 expected per cell) are
    left out; selecting on ``given`` keeps the independence intact. At least
    half of the sample must remain, so the test is never vacuous.
    """
    strata = np.zeros(len(classes), dtype=np.int64)
    for f in given:
        strata = strata * SIZES[f] + _col(classes, f)
    ka, kb = BINS[a], BINS[b]
    _, strata = np.unique(strata, return_inverse=True)
    n_strata = strata.max() + 1
    counts = np.bincount((strata * ka + _binned(classes, a)) * kb + _binned(classes, b), minlength=n_strata * ka * kb)
    counts = counts.reshape(n_strata, ka, kb).astype(np.float64)
    counts = counts[counts.sum((1, 2)) >= 5 * ka * kb]
    assert counts.sum() >= len(classes) / 2
    rows, cols, n = counts.sum(2, keepdims=True), counts.sum(1, keepdims=True), counts.sum((1, 2), keepdims=True)
    expected = rows * cols / n
    pos = expected > 0
    x2 = np.sum((counts[pos] - expected[pos]) ** 2 / expected[pos])
    dof = np.sum((np.count_nonzero(rows[:, :, 0], axis=1) - 1) * (np.count_nonzero(cols[:, 0, :], axis=1) - 1))
    return stats.chi2.sf(x2, dof)


def _statements(story, separated, max_given=2):
    out = []
    for a, b in itertools.combinations(FACTORS, 2):
        rest = [f for f in FACTORS if f not in (a, b)]
        for k in range(max_given + 1):
            for given in itertools.combinations(rest, k):
                if story.graph.d_separated({a}, {b}, set(given)) == separated:
                    out.append((a, b, given))
    return out


_DEFAULT = load_story("default")


@pytest.mark.parametrize("a, b, given", _statements(_DEFAULT, separated=True))
def test_d_separations_of_the_dag_hold(sample, a, b, given):
    p = _ci_pvalue(sample, a, b, given)
    assert p > ALPHA, f"{a} ⟂ {b} | {given} is implied by the DAG but fails in the sample (p={p:.2g})"


def test_the_tests_have_power(sample, story):
    # Every (conditional) dependence the DAG does not rule out shows up, so
    # the independence test above would notice a dependence that should not be.
    dependent = _statements(story, separated=False)
    assert {("shape", "scale", ()), ("scale", "posY", ()), ("scale", "posX", ("posY",))} <= set(dependent)
    for a, b, given in dependent:
        assert _ci_pvalue(sample, a, b, given) < 1e-6, f"{a} and {b} given {given} should be dependent"
    # And the key independences are among those tested.
    implied = set(_statements(story, separated=True))
    assert ("shape", "posY", ("scale", "posX")) in implied
    assert ("scale", "posX", ("shape",)) in implied
    assert ("orientation", "posY", ()) in implied


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_same_seed_same_dataset(story, seed, n):
    a, b = resample(story, n, seed), resample(story, n, seed)
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_array_equal(a.indices, b.indices)
    if n >= 50:
        assert not np.array_equal(a.classes, resample(story, n, seed + 1).classes)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200))
def test_every_row_names_its_image(story, seed, n):
    r = resample(story, n, seed)
    assert r.classes.shape == (n, 5) and r.classes.dtype == np.int64
    np.testing.assert_array_equal(classes_array_of(r.indices), r.classes)
    with tempfile.TemporaryDirectory() as d:
        path = save_resampled(r, Path(d) / "r.npz", progress=False)
        grid, indices = load_resampled(path)
        np.testing.assert_array_equal(indices, r.indices)
        np.testing.assert_array_equal(grid.classes, r.classes)
        np.testing.assert_array_equal(grid.rows(np.arange(n)), render(r.classes))
        assert grid.metadata["seed"] == seed and grid.metadata["story_text"] == story.text


def test_same_seed_same_file_bytes_and_grid_images_equal_rendered(story, tmp_path):
    r = resample(story, 500, seed=7)
    a = save_resampled(r, tmp_path / "a.npz", progress=False)
    b = save_resampled(resample(story, 500, seed=7), tmp_path / "b.npz", progress=False)
    assert a.read_bytes() == b.read_bytes()
    # Images taken from a grid file are the same as rendered ones.
    uniq = np.unique(r.indices)
    gridfile = write_images(tmp_path / "grid.npz", render(classes_array_of(uniq)), classes_array_of(uniq))
    c = save_resampled(r, tmp_path / "c.npz", grid=gridfile, progress=False)
    with np.load(a, allow_pickle=False) as za, np.load(c, allow_pickle=False) as zc:
        np.testing.assert_array_equal(za["imgs"], zc["imgs"])
        np.testing.assert_array_equal(za["indices"], zc["indices"])
    assert load_grid(c).metadata["images"] == "grid file grid.npz"


def _random_story(rng):
    shape = rng.dirichlet(np.ones(3))
    scale = rng.dirichlet(np.ones(6), size=3)
    fmt = lambda a: np.array2string(np.asarray(a), separator=", ", precision=17, floatmode="unique")  # noqa: E731
    shape, scale = shape / shape.sum(), scale / scale.sum(1, keepdims=True)
    return story_from_text(
        f"""
[factors.shape]
probs = {fmt(shape)}
[factors.scale]
parents = ["shape"]
probs = {fmt(scale)}
[factors.orientation]
probs = "uniform"
[factors.posX]
probs = "uniform"
[factors.posY]
parents = ["scale"]
[factors.posY.normal]
mean = {rng.uniform(-0.5, 0.5):.3f}
coef = {{ scale = {rng.uniform(0, 1.5):.3f} }}
sd = 0.2
floor = 0.05
""",
        source="random.toml",
    )


@settings(max_examples=10, deadline=None, derandomize=True)
@given(table_seed=st.integers(0, 2**32 - 1))
def test_any_story_is_followed(table_seed):
    story = _random_story(np.random.default_rng(table_seed))
    r = resample(story, 30_000, seed=1)
    expected = story.table("shape")[:, None] * story.table("scale")  # P(shape, scale)
    observed = np.bincount(_col(r.classes, "shape") * 6 + _col(r.classes, "scale"), minlength=18)
    keep = expected.ravel() * r.n > 5
    obs, exp = observed[keep], expected.ravel()[keep] * r.n
    _, p = stats.chisquare(obs, exp * obs.sum() / exp.sum())
    assert p > ALPHA
    assert _ci_pvalue(r.classes, "shape", "posY", ("scale",)) > ALPHA


def test_bad_arguments():
    with pytest.raises(DataError, match=r"n \(images\) must be an integer from 1"):
        resample("default", 0, seed=1)
    with pytest.raises(DataError, match="seed"):
        resample("default", 5, seed=-1)
    with pytest.raises(DataError, match="no image for grid index"):
        classes = np.zeros((1, 5), np.int64)
        with tempfile.TemporaryDirectory() as d:
            g = write_images(Path(d) / "g.npz", render(classes), classes)
            r = resample("default", 50, seed=0)
            save_resampled(r, Path(d) / "r.npz", grid=g, progress=False)


def test_indices_match_classes_for_the_large_sample(sample):
    np.testing.assert_array_equal(classes_array_of(indices_of(sample)), sample)
