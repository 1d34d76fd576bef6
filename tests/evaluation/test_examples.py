"""The `>>>` examples in the evaluation modules' docstrings run and print what they show."""

import doctest

import pytest

import cvaeq.evaluation.heldout
import cvaeq.evaluation.metrics
import cvaeq.evaluation.truth
import cvaeq.evaluation.tv

MODULES = [cvaeq.evaluation.heldout, cvaeq.evaluation.metrics, cvaeq.evaluation.truth, cvaeq.evaluation.tv]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
