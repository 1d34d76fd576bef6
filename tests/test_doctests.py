"""Every ``>>>`` example in cvaeq's docstrings runs and is true.

The modules are found by walking the package, so a new module's examples run
without being listed anywhere.
"""

import doctest
import importlib
import pkgutil

import pytest

import cvaeq

# the package itself too: its docstring shows the top-level verbs
MODULES = ["cvaeq"] + sorted(m.name for m in pkgutil.walk_packages(cvaeq.__path__, "cvaeq."))


def test_the_walk_finds_the_modules_with_examples():
    with_examples = [n for n in MODULES
                     if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(n)))]
    assert {"cvaeq.story", "cvaeq.world", "cvaeq.hookspecs", "cvaeq.model.checkpoint"} <= set(with_examples)
    assert len(with_examples) >= 30


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run: python -m doctest -v)"
