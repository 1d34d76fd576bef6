"""The layers of the package, read from its import graph.

The import graph of every module under ``cvaeq/`` is read from the source
(``ast``): every ``import`` and ``from ... import`` statement, at any depth,
relative ones resolved. **Function-local imports count**: an import inside a
function is the same dependency, only paid later, and a circle hidden behind
one still means two modules that cannot be read, tested or moved apart
(imports under ``if TYPE_CHECKING:`` would count too; there are none).
``from a import b`` is an edge to the module ``a.b`` when there is one, else
to ``a``. Parent packages are not edges of their submodules (Python runs a
package's ``__init__`` first, but a package re-exporting its submodules is
no circle).

Three rules:

* **no import circle** among cvaeq's modules;
* **the library never imports the CLI**: ``cvaeq.cli`` (and ``python -m cvaeq``,
  ``cvaeq.__main__``) sits on top; what a command and the library share
  lives in the library (``cvaeq.errors.one_line``, ``cvaeq.serve.connections.listen``);
* **the core imports no world**: worlds are data handed to it through
  plugins. A world's own package may import the core and itself;
  ``cvaeq.default_plugins`` registers the built-in worlds (it is loaded by
  name, so it is no import edge of the core). Nothing else may import a world
  package, directly or through another module.
"""

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent / "cvaeq"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in root.rglob("*.py")}


MODULES = modules_of(ROOT)


def imports_of(path: Path, root: Path = ROOT, modules: dict[str, Path] = MODULES) -> set[str]:
    """The cvaeq modules ``path`` imports, anywhere in the file (see the module docstring)."""

    def existing(name: str) -> str:  # the longest prefix of name that is a module ("" if none)
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets |= {f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names}
    out = {existing(t) for t in targets if t == "cvaeq" or t.startswith("cvaeq.")}
    return out - {"", name}


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other, directly or around a circle (sorted)."""
    g = nx.DiGraph([(m, d) for m, deps in graph.items() for d in deps])
    g.add_nodes_from(graph)
    return sorted(sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1)


def is_cli(module: str) -> bool:
    return module == "cvaeq.cli" or module.startswith("cvaeq.cli.") or module == "cvaeq.__main__"


def is_world(module: str) -> bool:
    return module.startswith("cvaeq.worlds.")


def may_import_worlds(module: str) -> bool:
    return is_world(module) or module.startswith("cvaeq.default_plugins")


def test_the_graph_is_read_from_every_module():
    assert {"cvaeq.story", "cvaeq.engine.counterfactual", "cvaeq.worlds.dsprites.render"} <= set(GRAPH)
    # the reader sees relative imports: the dSprites world imports the core's World
    assert "cvaeq.world" in GRAPH["cvaeq.worlds.dsprites"]
    assert "cvaeq.worlds.dsprites" in GRAPH["cvaeq.default_plugins.worlds"]
    # ... function-local ones (torch-heavy modules are imported where used) ...
    assert "cvaeq.query.answer" in GRAPH["cvaeq.cli.query"]
    # ... and `from PACKAGE import MODULE` as an edge to the module: the CLI package imports its commands
    assert {"cvaeq.cli.query", "cvaeq.cli.serve", "cvaeq.cli.group"} <= GRAPH["cvaeq.cli"]


def test_a_circle_is_found_however_long_and_wherever_its_imports_are(tmp_path):
    """The check itself: a toy package with a three-module circle closed by a function-local,
    relative import, and a clean module beside it."""
    pkg = tmp_path / "cvaeq"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("from cvaeq.sub import b\n")
    (pkg / "sub" / "b.py").write_text("import cvaeq.c\n")
    (pkg / "c.py").write_text("def f():\n    from . import a\n")
    (pkg / "d.py").write_text("from .a import thing\n")
    modules = modules_of(pkg)
    graph = {m: imports_of(p, pkg, modules) for m, p in modules.items()}
    assert graph["cvaeq.c"] == {"cvaeq.a"} and graph["cvaeq.sub"] == {"cvaeq.sub.b"}
    assert import_circles(graph) == [["cvaeq.a", "cvaeq.c", "cvaeq.sub.b"]]


def test_no_import_circle():
    circles = import_circles(GRAPH)
    shown = "; ".join(
        " ↔ ".join(c) + " (" + ", ".join(f"{m} → {d}" for m in c for d in sorted(GRAPH[m]) if d in c) + ")"
        for c in circles
    )
    assert not circles, (
        f"modules that import each other: {shown}; move what they share into the lower module "
        "(function-local imports count)"
    )


def test_the_library_never_imports_the_cli():
    wrong = sorted(f"{m} → {d}" for m, deps in GRAPH.items() if not is_cli(m) for d in deps if is_cli(d))
    assert not wrong, f"library modules import the CLI: {', '.join(wrong)}; move what they share into the library"


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
