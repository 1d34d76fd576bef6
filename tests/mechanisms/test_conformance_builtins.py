"""The conformance suite on the built-in categorical family, and on the generic fallback."""

import pytest

from cvaeq.mechanisms import gumbel_max
from cvaeq.testing import CHECKS, IMAGE_CHECKS, bare


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_gumbel_max_conforms(check):
    check("gumbel_max")


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_generic_fallback_conforms(check):
    # A family with only noise_prior and assign: abduction goes through likelihood weighting.
    check(bare(gumbel_max), max_examples=5)


@pytest.mark.parametrize("check", IMAGE_CHECKS.values(), ids=IMAGE_CHECKS.keys())
@pytest.mark.parametrize("mechanism", ["bernoulli", "discretised_logistic"])
def test_builtin_image_mechanisms_conform(check, mechanism):
    check(mechanism)
