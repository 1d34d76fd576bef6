"""A reusable conformance suite for mechanism families (needs hypothesis).

A mechanism plugin runs it against its own family in its tests::

    import pytest
    from cvaeq.testing import CHECKS

    @pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
    def test_conformance(check):
        check(MyFamily)          # or the registered name, "my_family"

The checks are the SCM invariants: replay reproduces the factual world, do()
sets its node and leaves non-descendants alone, a do() with the factual value
changes nothing, interventional marginals match exact enumeration, the
abducted noise posterior matches rejection sampling, ``abduct`` weighs as
``log_prob`` does whatever the order of calls, and every value a
mechanism gives is of the type, shape and range the engine takes (the check
the core makes of a plugin's mechanisms at run time).

Image mechanisms (``register_image_mechanisms``) have their own checks,
:data:`IMAGE_CHECKS` (:mod:`cvaeq.testing.images`): the abducted pixel
noise replays any picture byte for byte under any decoder output, and a
pixel's probabilities sum to 1.
"""

from .checks import (
    CHECKS,
    check_abduction_weighs_as_log_prob,
    check_do_sets_value,
    check_factual_intervention_changes_nothing,
    check_interventional_matches_enumeration,
    check_log_prob_matches_table,
    check_mechanism_family,
    check_non_descendants_keep_factual,
    check_posterior_matches_rejection,
    check_replay_reproduces_factual,
    check_values_follow_the_protocol,
)
from .images import (
    IMAGE_CHECKS,
    check_image_log_prob_is_normalised,
    check_image_mechanism,
    check_image_replay_gives_the_picture_back,
)
from .scms import SCMSpec, enumerate_marginals, random_scm, random_tables, scm_specs
from .wrappers import bare

__all__ = [
    "CHECKS",
    "check_mechanism_family",
    "check_replay_reproduces_factual",
    "check_do_sets_value",
    "check_non_descendants_keep_factual",
    "check_factual_intervention_changes_nothing",
    "check_interventional_matches_enumeration",
    "check_posterior_matches_rejection",
    "check_values_follow_the_protocol",
    "check_log_prob_matches_table",
    "check_abduction_weighs_as_log_prob",
    "IMAGE_CHECKS",
    "check_image_mechanism",
    "check_image_replay_gives_the_picture_back",
    "check_image_log_prob_is_normalised",
    "SCMSpec",
    "scm_specs",
    "random_scm",
    "random_tables",
    "enumerate_marginals",
    "bare",
]
