"""The `>>>` examples in the causal core's docstrings run and are true."""

import doctest
import importlib

import pytest

MODULES = [
    "cvaeq.scm",
    "cvaeq.plugins",
    "cvaeq.mechanisms.base",
    "cvaeq.mechanisms.gumbel",
    "cvaeq.mechanisms.gaussian",
    "cvaeq.engine.abduction",
    "cvaeq.engine.action",
    "cvaeq.engine.prediction",
    "cvaeq.engine.counterfactual",
    "cvaeq.testing.scms",
    "cvaeq.testing.wrappers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
