"""examples/explore.ipynb runs top to bottom on the shipped model (nbclient, a real
kernel) and shows what it says: the story's DAG, the pictures and tables of answers."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "explore.ipynb"


def test_the_notebook_runs_and_shows_pictures_and_tables(monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own future default (else it warns)
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = str(Path(__file__).resolve().parents[2])
    # the kernel imports cvaeq from this checkout, as the tests do
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": root}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    data = [o.get("data", {}) for o in outputs]
    assert any("image/svg+xml" in d and "data-node" in d["image/svg+xml"] for d in data)  # the story's DAG
    html = [d["text/html"] for d in data if "text/html" in d]
    assert any("counterfactual" in h and h.count("<img") == 3 for h in html)  # evidence, mean, samples
    assert any("<table" in h and "probability" in h for h in html)
    assert sum("image/png" in d for d in data) >= 2
