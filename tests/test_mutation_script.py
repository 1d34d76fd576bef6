"""benchmarks/mutation.py plants a mutant only inside its block, restores the file
whatever happens, and reports a pattern that no longer matches instead of skipping it."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "mutation.py"


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_a_mutant_is_planted_in_its_block_and_the_file_restored_even_on_error(mutation, tmp_path):
    (tmp_path / "m.py").write_text("def f(x):\n    return x < 1\n")
    m = mutation.Mutant("lt_le", "m.py", "return x < 1", "return x <= 1", tests=())
    status, original = mutation.apply(tmp_path, m)
    assert status == "ok"
    with pytest.raises(RuntimeError):
        with mutation.Planted(tmp_path, m, original):
            assert (tmp_path / "m.py").read_text() == "def f(x):\n    return x <= 1\n"
            raise RuntimeError("a test run that blew up")
    assert (tmp_path / "m.py").read_text() == original


def test_a_pattern_that_moved_on_is_reported_not_skipped(mutation, tmp_path):
    (tmp_path / "m.py").write_text("a < b\na < b\n")
    assert mutation.apply(tmp_path, mutation.Mutant("x", "m.py", "a <= b", "a < b", ())) == ("pattern-not-found", None)
    assert mutation.apply(tmp_path, mutation.Mutant("x", "m.py", "a < b", "a <= b", ()))[0] == "ambiguous (2 matches)"
    assert mutation.apply(tmp_path, mutation.Mutant("x", "gone.py", "a", "b", ()))[0] == "file-not-found"


def test_every_mutant_changes_something_and_names_existing_test_files(mutation):
    names = [m.name for m in mutation.MUTANTS]
    assert len(names) == len(set(names))
    for m in mutation.MUTANTS:
        assert m.old != m.new and m.tests
        for t in m.tests:
            assert (SCRIPT.parent.parent / t).exists(), f"{m.name}: no test file {t}"
