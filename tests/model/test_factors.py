import numpy as np
import pytest

from cvaeq.worlds.dsprites.factors import FACTORS
from cvaeq.errors import DataError
from cvaeq.model.factors import contingency, fit_factor_logits, total_variation


def test_fitted_mechanisms_recover_the_story_on_a_large_sample(story):
    classes = story.sample(200_000, np.random.default_rng(1))
    fitted = fit_factor_logits(classes, story)
    for f in FACTORS:
        probs = np.exp(fitted[f])
        assert probs.shape == story.table(f).shape
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-9)
        rows = contingency(classes, f, story.parents(f)).sum(-1) if story.parents(f) else None
        assert total_variation(probs, story.table(f), rows) < 0.02, f


def test_fit_uses_the_data_not_the_story(story):
    # All squares in the data: the fitted shape mechanism must say so.
    classes = story.sample(2000, np.random.default_rng(0))
    classes[:, 0] = 0
    probs = np.exp(fit_factor_logits(classes, story)["shape"])
    assert probs[0] > 0.95


def test_fit_is_deterministic(story):
    classes = story.sample(3000, np.random.default_rng(0))
    a, b = fit_factor_logits(classes, story), fit_factor_logits(classes, story)
    assert all(np.array_equal(a[f], b[f]) for f in FACTORS)


def test_bad_labels_are_a_data_error(story):
    with pytest.raises(DataError, match=r"\(n >= 10, 5\)"):
        fit_factor_logits(np.zeros((3, 4), dtype=np.int64), story)
