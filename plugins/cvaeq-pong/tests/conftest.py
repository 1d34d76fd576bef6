import os
import sys
from pathlib import Path

import pytest

# Installed plugins are not loaded during tests (as in cvaeq's own tests/conftest.py).
os.environ["CVAEQ_LOAD_PLUGINS"] = "0"

# The package beside these tests, when it is not installed (pip install -e plugins/cvaeq-pong installs it).
try:
    import cvaeq_pong  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import cvaeq_pong  # noqa: F401


@pytest.fixture
def registered():
    """The plugin registered as an installed one would be (installed plugins are not loaded in tests)."""
    from cvaeq.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if pm.is_registered(cvaeq_pong):
        yield
        return
    pm.register(cvaeq_pong, name="cvaeq-pong")
    yield
    pm.unregister(cvaeq_pong)


@pytest.fixture(autouse=True)
def _cvaeq_home(tmp_path, monkeypatch):
    """Each test gets its own empty cache folder."""
    monkeypatch.setenv("CVAEQ_HOME", str(tmp_path / "cvaeq-home"))
