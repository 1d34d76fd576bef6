"""Continuous factors and worlds without a renderer (cvaeq.world)."""

import numpy as np
import pytest

from cvaeq.errors import DataError
from cvaeq.world import Factor, World

DIGITS = Factor("digit", labels=tuple("0123456789"))
THICK = Factor("thickness", low=0.0, high=10.0, unit="px")


def digits_world():
    return World("digits", (DIGITS, THICK), image_shape=(28, 28), pixel="8bit")


def test_a_continuous_factor_takes_any_number_in_its_interval_and_nothing_else():
    assert THICK.parse("0") == 0.0 and THICK.parse("10") == 10.0 and THICK.parse("2.25") == 2.25
    for bad in ("-0.001", "10.5", "nan", "inf", "two"):
        with pytest.raises(DataError, match="thickness"):
            THICK.parse(bad)


def test_a_continuous_factor_has_no_classes_and_says_so():
    with pytest.raises(DataError, match="continuous"):
        _ = THICK.size
    with pytest.raises(DataError, match="continuous"):
        THICK.snap(2.0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(low=1.0), dict(low=2.0, high=1.0), dict(low=0.0, high=float("inf")), dict(low=0, high=1, labels=("a",))],
)
def test_a_bad_interval_is_refused(kwargs):
    with pytest.raises(DataError):
        Factor("t", **kwargs)


def test_a_world_with_continuous_factors_has_no_grid_and_no_renderer():
    w = digits_world()
    assert not w.has_renderer and w.sizes == {"digit": 10} and w.continuous == ("thickness",)
    with pytest.raises(DataError, match="no grid"):
        _ = w.n_images
    with pytest.raises(DataError, match="no renderer"):
        w.render_checked(np.zeros((1, 2), np.int64))
    with pytest.raises(DataError, match="render=None"):
        World("bad", (DIGITS, THICK), image_shape=(28, 28), render=lambda c: np.zeros((len(c), 28, 28), np.uint8))


def test_factor_values_are_checked_column_by_column():
    w = digits_world()
    assert w.row({"digit": 7, "thickness": 2.5}).tolist() == [[7.0, 2.5]]
    assert w.values_of(np.array([[3, 1.5]])).tolist() == [[3.0, 1.5]]
    for bad in ([[10, 1.0]], [[2.5, 1.0]], [[1, 11.0]], [[1, float("nan")]]):
        with pytest.raises(DataError):
            w.check_factors(np.array(bad))
    assert w.parse_factors(["digit=4", "thickness=3"]) == {"digit": 4, "thickness": 3.0}
