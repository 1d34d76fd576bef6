import os

import pytest

# Installed third-party plugins are not loaded during tests.
os.environ["CVAEQ_LOAD_PLUGINS"] = "0"
# One torch thread unless the runner says otherwise: the tests' tensors are small and the
# machine may be shared (cvaeq.threads; tests/test_threads.py checks the policy itself).
os.environ.setdefault("CVAEQ_THREADS", "1")


@pytest.fixture(autouse=True)
def _cvaeq_home(tmp_path, monkeypatch):
    """Each test gets its own empty cache folders (cvaeq's home, and the trained predictors' cache,
    which would otherwise be ``~/.cache/cvaeq``: a test writes only in its temp folder)."""
    monkeypatch.setenv("CVAEQ_HOME", str(tmp_path / "cvaeq-home"))
    monkeypatch.setenv("CVAEQ_CACHE", str(tmp_path / "cvaeq-cache"))
