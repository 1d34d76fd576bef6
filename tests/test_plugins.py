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
    assert get_story_plugins() == {"default": "cvaeq.default_plugins.stories", "pendulum": "cvaeq.default_plugins.stories",
                                   "tilted": "tilted-stories"}


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
    assert data["stories"] == {"default": "cvaeq.default_plugins.stories", "pendulum": "cvaeq.default_plugins.stories"}


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


# ---------------------------------------------------------------------- worlds

def _tiny_world(name="tiles"):
    import numpy as np

    from cvaeq.world import Factor, World

    def render(classes):
        out = np.zeros((len(classes), 8, 8), np.uint8)
        for i, (colour, x) in enumerate(classes):
            out[i, colour * 4 : colour * 4 + 4, x * 2 : x * 2 + 2] = 1
        return out

    return World(name, (Factor("colour", labels=("red", "blue")), Factor("x", values=[0.0, 0.5, 1.0, 1.5])),
                 image_shape=(8, 8), render=render)


def test_register_worlds_records_the_plugin_and_a_story_can_name_it(register_plugin):
    from cvaeq.story import story_from_text
    from cvaeq.world import get_world

    world = _tiny_world()

    class Tiles:
        @hookimpl
        def register_worlds(self, register):
            register(world)

    register_plugin(Tiles(), "toy-tiles")
    assert get_world("tiles") is world
    assert plugins.get_world_plugins() == {"dsprites": "cvaeq.default_plugins.worlds", "pendulum": "cvaeq.default_plugins.worlds",
                                              "tiles": "toy-tiles"}
    story = story_from_text('world = "tiles"\n[factors.colour]\nprobs = [0.5, 0.5]\n'
                            '[factors.x]\nparents = ["colour"]\n[factors.x.probs]\nred = [1, 0, 0, 0]\nblue = [0, 0, 0.5, 0.5]\n')
    assert story.world is world and story.factors == ("colour", "x")
    assert story.graph.parents("X") == ("colour", "x", "Z")
    data = json.loads(CliRunner().invoke(main, ["plugins", "--json"]).output)
    assert data["worlds"]["tiles"] == "toy-tiles"


def test_register_worlds_twice_and_unknown_names(register_plugin):
    from cvaeq.errors import DataError, StoryError
    from cvaeq.story import story_from_text
    from cvaeq.world import get_world

    with pytest.raises(DataError, match="unknown world 'nowhere'; known: dsprites"):
        get_world("nowhere")
    with pytest.raises(StoryError, match="unknown world 'nowhere'"):
        story_from_text('world = "nowhere"\n')

    class Again:
        @hookimpl
        def register_worlds(self, register):
            register(_tiny_world("dsprites"))

    register_plugin(Again(), "again")
    with pytest.raises(PluginError, match="'dsprites' is registered twice"):
        plugins.get_worlds()


def test_register_worlds_a_story_error_names_that_worlds_factors(register_plugin):
    from cvaeq.errors import StoryError
    from cvaeq.story import story_from_text

    class Tiles:
        @hookimpl
        def register_worlds(self, register):
            register(_tiny_world())

    register_plugin(Tiles(), "toy-tiles")
    with pytest.raises(StoryError, match="unknown factor 'shape'; the factors of world 'tiles' are colour, x"):
        story_from_text('world = "tiles"\n[factors.shape]\nprobs = "uniform"\n')
    with pytest.raises(StoryError, match="unknown value 'green' of parent 'colour'; allowed: red, blue"):
        story_from_text('world = "tiles"\n[factors.colour]\nprobs = [0.5, 0.5]\n'
                        '[factors.x]\nparents = ["colour"]\n[factors.x.probs]\nred = [1, 0, 0, 0]\ngreen = [1, 0, 0, 0]\n')


# ---------------------------------------------------------------- image models

def test_register_image_models_records_the_plugin_and_get_family_finds_it(register_plugin):
    from cvaeq.errors import CvaeqError
    from cvaeq.model.family import get_family

    class Family:
        def build(self, world, latent_dim, arch):
            return torch.nn.Linear(1, 1)

        def arch_of(self, model):
            return {}

    family = Family()

    class Models:
        @hookimpl
        def register_image_models(self, register):
            register("linear", family)

    register_plugin(Models(), "toy-models")
    assert get_family("linear") is family
    assert plugins.get_image_model_plugins()["linear"] == "toy-models"
    assert plugins.get_image_model_plugins()["causal_vae"] == "cvaeq.default_plugins.image_models"
    with pytest.raises(CvaeqError, match="unknown image-model family 'nope'; known: causal_vae, linear"):
        get_family("nope")
    result = CliRunner().invoke(main, ["plugins"])
    assert "linear       toy-models" in result.output.splitlines()


def test_an_installed_plugin_with_an_unknown_hook_is_skipped_with_one_line(monkeypatch, capsys):
    # A plugin written for a newer cvaeq must not stop every command (pluggy's check_pending would raise).
    class EP:
        def __init__(self, name, load):
            self.name, self.load = name, load

    future = types.ModuleType("cvaeq_future")
    future.register_timemachines = hookimpl(lambda register: None)
    future.register_mechanisms = hookimpl(lambda register: register("future_coin", Coin))
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EP("future", lambda: future)])
    plugins._load_entry_points()
    get_plugin_manager().check_pending()  # nothing unknown is left registered
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'future'" in err and "register_timemachines" in err
    assert "future_coin" not in get_mechanisms()
