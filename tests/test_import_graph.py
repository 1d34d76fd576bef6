"""The core imports no world: worlds are data handed to it through plugins.

The import graph of every module under ``cvaeq/`` is read from the source
(``ast``, every ``import`` and ``from ... import``, at any depth, relative ones
resolved), not from a list of dSprites names that could drift. A world's own
package may import the core and itself; ``cvaeq.default_plugins`` registers
the built-in worlds (it is loaded by name, so it is no import edge of the
core). Nothing else may import a world package, directly or through another
module.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "cvaeq"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as a and a.b)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m == "cvaeq" or m.startswith("cvaeq.")}


GRAPH = {module_name(p): imports_of(p) for p in ROOT.rglob("*.py")}


def is_world(module: str) -> bool:
    return module.startswith("cvaeq.worlds.")


def may_import_worlds(module: str) -> bool:
    return is_world(module) or module.startswith("cvaeq.default_plugins")


def test_the_graph_is_read_from_every_module():
    assert {"cvaeq.story", "cvaeq.engine.counterfactual", "cvaeq.worlds.dsprites.render"} <= set(GRAPH)
    # the reader sees relative imports: the dSprites world imports the core's World
    assert "cvaeq.world" in GRAPH["cvaeq.worlds.dsprites"]
    assert "cvaeq.worlds.dsprites" in GRAPH["cvaeq.default_plugins.worlds"]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not may_import_worlds(m)))
def test_core_module_imports_no_world(module):
    seen, todo = set(), [module]
    while todo:  # everything the module imports, transitively
        m = todo.pop()
        for dep in GRAPH.get(m, ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    worlds = sorted(d for d in seen if is_world(d))
    assert not worlds, f"{module} imports the world module(s) {', '.join(worlds)}; read the world from the story instead"
