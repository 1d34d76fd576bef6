"""The plugin system: hooks, who supplied what, broken plugins, `cvaeq plugins`.

Every hookspec needs a test here whose name contains the hook's name
(:func:`test_every_hook_has_a_test` enforces it).
"""

import inspect
import json
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from cvaeq import hookimpl, hookspecs, plugins
from cvaeq.cli import main
from cvaeq.errors import MechanismError, PluginError
from cvaeq.plugins import get_mechanism_family, get_mechanisms, get_plugin_manager, get_stories, get_story_plugins


def hook_names() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "cvaeq_spec")]


@pytest.fixture
def register_plugin():
    """Register plugin objects for one test, unregistering them after."""
    pm = get_plugin_manager()
    added = []

    def add(plugin, name):
        pm.register(plugin, name=name)
        added.append(plugin)
        return plugin

    yield add
    for plugin in added:
        pm.unregister(plugin)


class Coin:
    """A toy mechanism family (a fair or biased coin): only the required members."""

    event_dim = 0
    size = 2

    def __init__(self, parents=(), probs=None):
        self.parents = tuple(parents)

    def noise_prior(self, num_particles):
        import pyro.distributions as dist

        return dist.Bernoulli(torch.full((num_particles,), 0.5))

    def assign(self, parents, noise):
        return noise.long()


class CoinPlugin:
    @hookimpl
    def register_mechanisms(self, register):
        register("coin", Coin)


def test_every_hook_has_a_test():
    names = [n for n in globals() if n.startswith("test_")]
    for hook in hook_names():
        assert any(hook in n for n in names), f"hook {hook} has no test in tests/test_plugins.py"


def test_register_mechanisms_records_the_plugin(register_plugin):
    assert "coin" not in get_mechanisms()
    register_plugin(CoinPlugin(), "toy-coin")
    family = get_mechanisms()["coin"]
    assert family.plugin == "toy-coin"
    assert isinstance(family(parents=()), Coin)
    assert get_mechanism_family("gumbel_max").plugin == "cvaeq.default_plugins.mechanisms"


def test_register_mechanisms_builtins_come_through_the_hook():
    families = get_mechanisms()
    assert {"gumbel_max", "bernoulli_image", "gaussian_latent"} <= set(families)
    assert {f.plugin for n, f in families.items() if n in ("gumbel_max", "bernoulli_image", "gaussian_latent")} == {
        "cvaeq.default_plugins.mechanisms"
    }


def test_register_mechanisms_twice_names_both_plugins(register_plugin):
    class Clash:
        @hookimpl
        def register_mechanisms(self, register):
            register("gumbel_max", Coin)

    register_plugin(Clash(), "clash")
    with pytest.raises(PluginError, match="'gumbel_max' is registered twice .*'clash'"):
        get_mechanisms()


def test_register_mechanisms_unknown_family_lists_known_ones():
    with pytest.raises(MechanismError, match="unknown mechanism 'nope'; known: bernoulli_image, gaussian_latent"):
        get_mechanism_family("nope")


def test_register_mechanisms_hook_that_raises_is_skipped_with_one_line(register_plugin, capsys):
    class Broken:
        @hookimpl
        def register_mechanisms(self, register):
            raise RuntimeError("boom")

    register_plugin(Broken(), "broken")
    families = get_mechanisms()
    assert "gumbel_max" in families
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'broken'" in err and "boom" in err


def test_register_stories_records_the_plugin(register_plugin, tmp_path):
    path = tmp_path / "tilted.toml"

    class Stories:
        @hookimpl
        def register_stories(self, register):
            register("tilted", str(path))

    register_plugin(Stories(), "tilted-stories")
    assert get_stories()["tilted"] == str(path)
    assert get_story_plugins() == {"default": "cvaeq.default_plugins.stories", "tilted": "tilted-stories"}


def test_register_stories_twice_is_a_plugin_error(register_plugin):
    class Again:
        @hookimpl
        def register_stories(self, register):
            register("default", "/elsewhere.toml")

    register_plugin(Again(), "again")
    with pytest.raises(PluginError, match="'default' is registered twice"):
        get_stories()


def test_entry_point_that_fails_to_load_is_one_warning_line(monkeypatch, capsys):
    class EP:
        def __init__(self, name, load):
            self.name, self.load = name, load

    def bad_load():
        raise ImportError("no module named 'cvaeq_missing'")

    good = types.ModuleType("cvaeq_good")
    good.register_mechanisms = hookimpl(lambda register: register("good_coin", Coin))
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EP("bad", bad_load), EP("good", lambda: good)])
    try:
        plugins._load_entry_points()
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "'bad'" in err and "cvaeq_missing" in err
        assert get_mechanisms()["good_coin"].plugin == "good"
    finally:
        pm = get_plugin_manager()
        if pm.has_plugin("good"):
            pm.unregister(name="good")


def test_installed_plugins_are_not_loaded_in_tests():
    import os

    assert os.environ["CVAEQ_LOAD_PLUGINS"] == "0"
    names = {name for name, _ in get_plugin_manager().list_name_plugin()}
    assert names == set(plugins.DEFAULT_PLUGINS)


def test_cvaeq_plugins_lists_every_mechanism_and_its_plugin(register_plugin):
    register_plugin(CoinPlugin(), "toy-coin")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "coin             toy-coin" in lines
    assert "gumbel_max       cvaeq.default_plugins.mechanisms" in lines
    data = json.loads(CliRunner().invoke(main, ["plugins", "--json"]).output)
    assert data["mechanisms"]["coin"] == "toy-coin"
    assert {"name": "toy-coin", "hooks": ["register_mechanisms"]} in data["plugins"]
    assert data["stories"] == {"default": "cvaeq.default_plugins.stories"}


def test_a_family_with_only_noise_and_assign_answers_queries(register_plugin):
    # The generic fallback: a third-party family without abduct/log_prob still works end to end.
    from cvaeq.engine import infer
    from cvaeq.graph import CausalGraph
    from cvaeq.scm import SCM

    register_plugin(CoinPlugin(), "toy-coin")
    coin = get_mechanism_family("coin")
    scm = SCM(CausalGraph([], nodes=["c"]), {"c": coin(parents=())})
    r = infer(scm, ["c"], {}, {"c": 1}, 100, seed=0)
    assert r.distribution("c") == pytest.approx({0: 0.0, 1: 1.0})
    assert 0 < r.ess <= 100
    assert sys.modules["cvaeq.default_plugins.mechanisms"] in get_plugin_manager().get_plugins()
