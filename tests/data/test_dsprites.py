import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cvaeq.worlds.dsprites import factors as d
from cvaeq.errors import DataError


def test_grid_matches_real_layout():
    assert d.LATENT_SIZES == (1, 3, 6, 40, 32, 32)
    assert d.N_IMAGES == 737_280
    assert list(d.BASES) == [737280, 245760, 40960, 1024, 32, 1]
    # posY varies fastest, then posX, ...
    assert d.classes_of(1) == {"shape": 0, "scale": 0, "orientation": 0, "posX": 0, "posY": 1}
    assert d.classes_of(32)["posX"] == 1
    assert d.index_of({"shape": 2, "scale": 5, "orientation": 39, "posX": 31, "posY": 31}) == d.N_IMAGES - 1


@given(st.integers(0, d.N_IMAGES - 1))
def test_index_round_trip(index):
    classes = d.classes_array_of(np.array([index]))
    assert d.indices_of(classes)[0] == index


def test_snap_to_nearest_grid_value_and_reject_off_domain():
    assert d.snap("scale", 1.0) == 5
    assert d.snap("scale", 0.52) == 0
    assert d.snap("orientation", 2 * np.pi) == 39
    with pytest.raises(DataError, match="off the domain"):
        d.snap("scale", 1.2)
    with pytest.raises(DataError, match="off the domain"):
        d.snap("posX", -0.5)


def test_parse_value_errors_name_the_fix():
    assert d.parse_value("shape", "heart") == 2
    with pytest.raises(DataError, match="allowed: square, ellipse, heart"):
        d.parse_value("shape", "circle")
    with pytest.raises(DataError, match="known: shape, scale"):
        d.parse_value("colour", "1")
    with pytest.raises(DataError, match="takes a number"):
        d.parse_value("scale", "big")


def test_parse_factors_needs_all_five():
    with pytest.raises(DataError, match="missing factor"):
        d.parse_factors(["shape=heart"])
    with pytest.raises(DataError, match="given twice"):
        d.parse_factors(["shape=heart", "shape=square"])


def test_values_and_labels():
    classes = np.array([[2, 5, 0, 0, 31]])
    assert np.allclose(d.values_of(classes), [[3.0, 1.0, 0.0, 0.0, 1.0]])
    assert d.label("shape", 0) == "square"
    assert d.label("scale", 5) == "1"
