import os

import pytest

# Installed third-party plugins are not loaded during tests.
os.environ["CVAEQ_LOAD_PLUGINS"] = "0"


@pytest.fixture(autouse=True)
def _cvaeq_home(tmp_path, monkeypatch):
    """Each test gets its own empty cache folder."""
    monkeypatch.setenv("CVAEQ_HOME", str(tmp_path / "cvaeq-home"))
