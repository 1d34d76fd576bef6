"""No library function is longer than :data:`MAX_LINES` lines.

Read from the source with ``ast``: every function and method under ``cvaeq/``
(nested ones too), counted from its ``def`` line to its last line, docstring
and comments included. A long function is split into helpers named for what
they do, so that each can be read, tested and changed alone.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "cvaeq"
MAX_LINES = 60

#: Functions being split on other branches of issue 22; the lead empties this after merging them.
ALLOWED = {
}


def function_lengths(root: Path = ROOT) -> dict[str, int]:
    """``{"path::name": lines}`` of every function under ``root``'s package."""
    out: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{where}::{node.name}"
                out[key] = max(out.get(key, 0), node.end_lineno - node.lineno + 1)
    return out


def test_lengths_are_read_from_the_source(tmp_path):
    pkg = tmp_path / "cvaeq"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f():\n    '''doc'''\n    return 1\n\n\nclass C:\n    def g(self):\n\n        pass\n")
    assert function_lengths(pkg) == {"cvaeq/m.py::f": 3, "cvaeq/m.py::g": 3}
    assert function_lengths()["cvaeq/story.py::story_from_text"] > 10


def test_no_library_function_is_longer_than_60_lines():
    lengths = function_lengths()
    long = sorted((n, key) for key, n in lengths.items() if n > MAX_LINES and key not in ALLOWED)
    assert not long, "functions over {} lines: {}; split them into helpers named for what they do".format(
        MAX_LINES, ", ".join(f"{key} ({n})" for n, key in long))


def test_the_allow_list_names_only_long_functions_that_exist():
    """An entry goes as soon as its function is short (or gone): the list cannot hide a new one."""
    lengths = function_lengths()
    stale = sorted(key for key in ALLOWED if lengths.get(key, 0) <= MAX_LINES)
    assert not stale, f"remove from ALLOWED (now at most {MAX_LINES} lines, or renamed): {', '.join(stale)}"
