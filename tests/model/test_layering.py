"""The model layer sits below the command line: no module of cvaeq.model imports cvaeq.cli
(the circle cli -> cli/train -> model/distributed -> cli is gone)."""

import ast
from pathlib import Path

import pytest

import cvaeq.model

MODEL = Path(cvaeq.model.__file__).parent


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = ("." * node.level) + (node.module or "")
            out |= {mod, *(f"{mod}.{a.name}" for a in node.names)}
    return out


@pytest.mark.parametrize("path", sorted(MODEL.glob("*.py")), ids=lambda p: p.name)
def test_model_modules_do_not_import_the_cli(path):
    cli = sorted(m for m in _imports(path) if m.startswith(("cvaeq.cli", "..cli")))
    assert not cli, f"{path.name} imports {cli}; the CLI calls the model, never the other way"
