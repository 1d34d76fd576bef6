"""docs/plugins.md documents every hook, with its docstring as the reference."""

import inspect
import re
from pathlib import Path

import pytest

from cvaeq import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
HOOKS = [(n, f) for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "cvaeq_spec")]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_there_are_hooks():
    assert {"register_mechanisms", "register_stories"} <= {n for n, _ in HOOKS}


@pytest.mark.parametrize("name,spec", HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_documented_with_its_docstring(name, spec):
    doc = DOC.read_text()
    params = ", ".join(inspect.signature(spec).parameters)
    assert f"### `{name}({params})`" in doc, f"docs/plugins.md has no section for hook {name}"
    assert squash(inspect.getdoc(spec)) in squash(doc), f"docs/plugins.md's text for {name} is not its docstring"


def test_every_documented_hook_exists():
    documented = re.findall(r"^### `(\w+)\(", DOC.read_text(), flags=re.M)
    assert sorted(documented) == sorted(n for n, _ in HOOKS)
