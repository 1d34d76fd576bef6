"""The `>>>` examples in the query modules' docstrings run and print what they show."""

import doctest

import pytest

import cvaeq.query
import cvaeq.query.parser
import cvaeq.query.resolution
import cvaeq.query.syntax


@pytest.mark.parametrize("module", [cvaeq.query, cvaeq.query.syntax, cvaeq.query.parser, cvaeq.query.resolution])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
