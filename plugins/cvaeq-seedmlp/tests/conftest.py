"""As cvaeq's own suite: installed plugins are not loaded, and this plugin is
registered by a fixture, the way an installed one would be."""

import os

import pytest

os.environ["CVAEQ_LOAD_PLUGINS"] = "0"


@pytest.fixture(autouse=True)
def _cvaeq_home(tmp_path, monkeypatch):
    """Each test gets its own empty cache folder."""
    monkeypatch.setenv("CVAEQ_HOME", str(tmp_path / "cvaeq-home"))


@pytest.fixture(scope="module")
def registered():
    """The plugin registered under its entry-point name for the module's tests."""
    import cvaeq_seedmlp
    from cvaeq.plugins import get_plugin_manager

    pm = get_plugin_manager()
    if pm.is_registered(cvaeq_seedmlp):
        yield
        return
    pm.register(cvaeq_seedmlp, name="cvaeq-seedmlp")
    yield
    pm.unregister(cvaeq_seedmlp)
