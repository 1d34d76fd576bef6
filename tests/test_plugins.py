"""The plugin system: hooks, who supplied what, broken plugins, `cvaeq plugins`.

Every hookspec needs a test here whose name contains the hook's name
(:func:`test_every_hook_has_a_test` enforces it).
"""

import inspect
import re
import json
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from cvaeq import hookimpl, hookspecs, plugin_manager, plugins
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
    built = family(parents=())  # a plugin's mechanism comes wrapped, its answers checked
    assert isinstance(built.inner, Coin) and isinstance(built, Coin) and built.size == 2 and built.parents == ()
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
    with pytest.raises(MechanismError, match="unknown mechanism 'nope'; known: bernoulli_image, continuous, gaussian_latent"):
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
                                   "colour_pendulum": "cvaeq.default_plugins.stories", "morphomnist": "cvaeq.default_plugins.stories",
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
        plugin_manager._load_entry_points()
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
    assert data["stories"] == {"default": "cvaeq.default_plugins.stories", "pendulum": "cvaeq.default_plugins.stories",
                               "colour_pendulum": "cvaeq.default_plugins.stories",
                               "morphomnist": "cvaeq.default_plugins.stories"}


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
                                              "colour_pendulum": "cvaeq.default_plugins.worlds",
                                              "morphomnist": "cvaeq.default_plugins.worlds", "tiles": "toy-tiles"}
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

    with pytest.raises(DataError, match="unknown world 'nowhere'; known: colour_pendulum, dsprites"):
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
    assert get_family("linear").inner is family and isinstance(get_family("linear"), Family)  # checked, see below
    assert plugins.get_image_model_plugins()["linear"] == "toy-models"
    assert plugins.get_image_model_plugins()["causal_vae"] == "cvaeq.default_plugins.image_models"
    with pytest.raises(CvaeqError, match="unknown image-model family 'nope'; known: causal_vae, conv_causal_vae, linear"):
        get_family("nope")
    result = CliRunner().invoke(main, ["plugins"])
    assert "linear           toy-models" in result.output.splitlines()


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
    plugin_manager._load_entry_points()
    get_plugin_manager().check_pending()  # nothing unknown is left registered
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'future'" in err and "register_timemachines" in err
    assert "future_coin" not in get_mechanisms()


# ------------------------------------------------------- plugins that misbehave
#
# Each misbehaviour gets one line naming the plugin and what it broke (exit 2 at
# the command line), and the built-ins and other plugins keep working.

def _one_line_exit_2(result, *words):
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in err.strip().splitlines() if "rendering" not in line]  # (progress bars)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def _the_builtins_still_work():
    runner = CliRunner()
    r = runner.invoke(main, ["query", "P(shape | do(scale=1))", "--story", "default", "--samples", "200"])
    assert r.exit_code == 0 and "square" in r.output, r.output
    assert runner.invoke(main, ["plugins"]).exit_code == 0


def _gumbel(parents=(), probs=None):
    from cvaeq.mechanisms import GumbelMax

    return GumbelMax(parents=parents, probs=probs)


class _Raises:
    def __init__(self, parents=(), probs=None):
        self.base = _gumbel(parents, probs)
        self.parents, self.event_dim, self.size = self.base.parents, 0, self.base.size

    def noise_prior(self, n):
        return self.base.noise_prior(n)

    def assign(self, parents, noise):
        raise RuntimeError("boom in assign")


class _Class99(_Raises):
    def assign(self, parents, noise):
        return torch.full((noise.shape[0],), 99, dtype=torch.int64)


class _Floats(_Raises):
    def assign(self, parents, noise):
        return self.base.assign(parents, noise).float() + 0.25


class _NaN(_Raises):
    def assign(self, parents, noise):
        return torch.full((noise.shape[0],), float("nan"))


@pytest.mark.parametrize("factory, words", [
    (_Raises, ["assign() raised RuntimeError: boom in assign"]),
    (_Class99, ["assign() returned class 99 of a node with classes 0..1"]),
    (_Floats, ["assign() returned float32 values (e.g. ", "not int64 classes 0..1"]),
    (_NaN, ["assign() returned float32 values (e.g. nan"]),
])
def test_register_mechanisms_a_mechanism_that_misbehaves_is_one_line_naming_it(register_plugin, tmp_path,
                                                                               factory, words):
    class Bad:
        @hookimpl
        def register_mechanisms(self, register):
            register("badmech", factory)

    class Tiles:
        @hookimpl
        def register_worlds(self, register):
            register(_tiny_world())

    register_plugin(Bad(), "bad-mech")
    register_plugin(Tiles(), "toy-tiles")
    story = tmp_path / "s.toml"
    story.write_text('world = "tiles"\n[factors.colour]\nprobs = [0.5, 0.5]\nmechanism = "badmech"\n'
                     '[factors.x]\nprobs = "uniform"\n')
    for query in ("P(colour)", "P(x | do(colour=red))", "P(x | colour=blue)"):
        # (the model replays every node's assign, an intervened one's too, before do() replaces its value)
        r = CliRunner().invoke(main, ["query", query, "--story", str(story), "--samples", "50"])
        _one_line_exit_2(r, "plugin 'bad-mech' (mechanism 'badmech', node 'colour')", *words)
    with pytest.raises(PluginError, match="plugin 'bad-mech'"):
        from cvaeq.engine import infer
        from cvaeq.scm import build_scm
        from cvaeq.story import load_story

        infer(build_scm(load_story(str(story))), ["colour"], num_particles=10)
    _the_builtins_still_work()


def test_register_mechanisms_a_family_of_the_wrong_size_or_members_is_refused(register_plugin, tmp_path):
    class NoAssign:
        def __init__(self, parents=(), probs=None):
            self.parents, self.event_dim, self.size = tuple(parents), 0, 2

        def noise_prior(self, n):
            return torch.distributions.Uniform(torch.zeros(n), torch.ones(n))

    class Bad:
        @hookimpl
        def register_mechanisms(self, register):
            register("noassign", NoAssign)
            register("tiny", lambda parents=(), probs=None: Coin(parents))  # size 2 for a 3-class factor
            register("explodes", lambda parents=(), probs=None: 1 / 0)

    register_plugin(Bad(), "bad-fam")
    text = load_default_text()
    for name, words in [("noassign", "the factory returned NoAssign, which has no assign()"),
                        ("tiny", "built a mechanism of size 2 and event_dim 0 for a factor of 3 classes"),
                        ("explodes", "building it raised ZeroDivisionError")]:
        story = tmp_path / f"{name}.toml"
        story.write_text(text.replace("[factors.shape]\n", f'[factors.shape]\nmechanism = "{name}"\n', 1))
        r = CliRunner().invoke(main, ["query", "P(shape)", "--story", str(story)])
        _one_line_exit_2(r, "plugin 'bad-fam' (mechanism", words)
    _the_builtins_still_work()


def load_default_text():
    from cvaeq.story import load_story

    return load_story("default").text


def _world_rendering(images_of):
    import numpy as np

    from cvaeq.world import Factor, World

    return World("blots", (Factor("size", values=[1.0, 2.0]),), image_shape=(4, 4),
                 render=lambda c: images_of(np.zeros((len(c), 4, 4), np.uint8)))


@pytest.mark.parametrize("images_of, words", [
    (lambda z: z + 255, "render gave pixel values 255"),
    (lambda z: z.astype(float) * float("nan"), "render gave pixel values nan"),
    (lambda z: z + 0.5, "render gave pixel values 0.5"),
    (lambda z: z.astype(int) - 1, "render gave pixel values -1"),
    (lambda z: z[:, :2], ", 2, 4), expected ("),  # (N, 2, 4) for (N, 4, 4)
    (lambda z: z.astype(str), "render gave <U3 images, not numbers 0/1"),
    (lambda z: 1 / 0, "render() raised ZeroDivisionError"),
])
def test_register_worlds_a_renderer_that_misbehaves_is_refused_before_anything_is_stored(
        register_plugin, tmp_path, images_of, words):
    world = _world_rendering(images_of)

    class Blots:
        @hookimpl
        def register_worlds(self, register):
            register(world)

    register_plugin(Blots(), "toy-blots")
    out = tmp_path / "grid.npz"
    r = CliRunner().invoke(main, ["data", "build", "--world", "blots", "--out", str(out)])
    _one_line_exit_2(r, "plugin 'toy-blots' (world 'blots')", words)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing stored, not even a partial file
    r = CliRunner().invoke(main, ["data", "show", "--world", "blots", "size=1", "--out", str(tmp_path / "x.png")])
    _one_line_exit_2(r, "plugin 'toy-blots' (world 'blots')", words)
    _the_builtins_still_work()


def test_register_worlds_a_renderer_of_bools_or_floats_0_1_is_fine(register_plugin):
    import numpy as np

    for images_of in (lambda z: z.astype(bool), lambda z: z.astype(np.float32) + 1):
        world = _world_rendering(images_of)
        out = world.render_checked(np.array([[0], [1]]))
        assert out.dtype == np.uint8 and set(np.unique(out).tolist()) <= {0, 1}


def test_a_plugin_that_exits_at_import_is_one_warning_line_and_the_rest_works(monkeypatch, capsys):
    class EP:
        def __init__(self, name, load):
            self.name, self.load = name, load

    def exits():
        raise SystemExit(3)

    good = types.ModuleType("cvaeq_good2")
    good.register_mechanisms = hookimpl(lambda register: register("good_coin2", Coin))
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EP("exits", exits), EP("good2", lambda: good)])
    try:
        plugin_manager._load_entry_points()  # used to end the process with exit code 3, silently
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "plugin 'exits' failed to load" in err and "SystemExit: 3" in err
        assert get_mechanisms()["good_coin2"].plugin == "good2"
        _the_builtins_still_work()
    finally:
        if get_plugin_manager().has_plugin("good2"):
            get_plugin_manager().unregister(name="good2")


def test_a_hook_that_exits_loses_its_own_contributions_only(register_plugin, capsys):
    class Exits:
        @hookimpl
        def register_mechanisms(self, register):
            register("half", Coin)
            raise SystemExit(3)

    register_plugin(Exits(), "exits")
    families = get_mechanisms()
    assert "gumbel_max" in families and "half" not in families
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'exits' failed in register_mechanisms" in err and "SystemExit: 3" in err
    with pytest.raises(PluginError, match="mechanism 'half' is not available: plugin 'exits' failed while registering"):
        get_mechanism_family("half")


@pytest.mark.parametrize("hook", ["register_worlds", "register_mechanisms", "register_stories",
                                  "register_image_models"])
def test_register_42_is_one_warning_line_and_the_rest_works(register_plugin, capsys, hook):
    class FortyTwo:
        pass

    setattr(FortyTwo, hook, hookimpl(lambda self, register: register(42)))
    register_plugin(FortyTwo(), "forty-two")
    r = CliRunner().invoke(main, ["plugins", "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert "dsprites" in data["worlds"] and "gumbel_max" in data["mechanisms"] and "default" in data["stories"]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "plugin 'forty-two' registered a" in lines[0] and "without a name (42)" in lines[0]
    _the_builtins_still_work()


@pytest.mark.parametrize("hook, thing, words", [
    ("register_worlds", "not a world", "registered world 'not a world'"),
    ("register_stories", 42, "registered story 'x', which is int, not the path of a story file"),
    ("register_mechanisms", 42, "registered mechanism 'x', which is int, not a callable factory"),
])
def test_register_things_of_the_wrong_kind_are_skipped_with_one_line(register_plugin, capsys, hook, thing, words):
    class Wrong:
        pass

    if hook == "register_worlds":
        class Named:
            name = thing

        setattr(Wrong, hook, hookimpl(lambda self, register: register(Named())))
    else:
        setattr(Wrong, hook, hookimpl(lambda self, register: register("x", thing)))
    register_plugin(Wrong(), "wrong")
    describe = plugins.describe_plugins()
    assert "x" not in describe["stories"] and "x" not in describe["mechanisms"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_register_image_models_a_family_without_build_is_skipped_and_named_when_asked_for(register_plugin, capsys,
                                                                                          tmp_path):
    from cvaeq.model.family import get_family

    class NoBuild:
        def arch_of(self, model):
            return {}

    class Models:
        @hookimpl
        def register_image_models(self, register):
            register("nobuild", NoBuild())

    register_plugin(Models(), "no-build")
    assert "nobuild" not in plugins.get_image_models() and "causal_vae" in plugins.get_image_models()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'no-build' registered image model 'nobuild', which has no build()" in err
    with pytest.raises(PluginError, match="image-model family 'nobuild' is not available: plugin 'no-build' "
                                          "registered it, but has no build()"):
        get_family("nobuild")
    r = CliRunner().invoke(main, ["train", "--family", "nobuild", "--n", "8", "--epochs", "1", "--eval-n", "4",
                                  "--out", str(tmp_path / "m.safetensors"), "--quiet", "--device", "cpu"])
    _one_line_exit_2(r, "image-model family 'nobuild' is not available", "has no build()")
    assert not (tmp_path / "m.safetensors").exists()
    _the_builtins_still_work()


def test_warnings_about_one_plugin_are_printed_once_per_process(register_plugin, capsys):
    class Broken:
        @hookimpl
        def register_mechanisms(self, register):
            raise RuntimeError("boom")

    register_plugin(Broken(), "broken-once")
    for _ in range(3):
        get_mechanisms()
    assert capsys.readouterr().err.count("'broken-once'") == 1


class _ImageModel:
    """A plugin's image model of dSprites; ``bad`` names the answer it gets wrong."""

    latent_dim = 2

    def __init__(self, bad):
        from cvaeq.world import get_world

        self.bad, self.sizes = bad, get_world().sizes

    def pixel_logits(self, classes, z):
        out = torch.full((classes.shape[0], 64, 64), -5.0)
        if self.bad == "nan pixels":
            out[:, 3, 3] = float("nan")
        if self.bad == "shape":
            out = out[:, :32]
        return out

    def factor_logits(self, x):
        out = {f: torch.zeros(x.shape[0], k) for f, k in self.sizes.items()}
        if self.bad == "nan factors":
            out["shape"][:] = float("nan")
        return out

    def z_posterior(self, x, classes):
        loc, scale = torch.zeros(x.shape[0], 2), torch.ones(x.shape[0], 2)
        if self.bad == "scale":
            scale = -scale
        if self.bad == "raises":
            raise ValueError("no encoder")
        return loc, scale


@pytest.mark.parametrize("bad, words", [
    ("nan pixels", "pixel_logits() returned NaN pixels"),
    ("shape", "pixel_logits() returned shape (100, 32, 64); expected float [100, 64, 64]"),
    ("nan factors", "factor_logits() gave 'shape' NaN or non-float logits"),
    ("scale", "z_posterior() returned a NaN or infinite loc, or a scale that is not > 0"),
    ("raises", "z_posterior() raised ValueError: no encoder"),
])
def test_register_image_models_a_model_that_misbehaves_is_one_line_naming_it(bad, words):
    import numpy as np

    from cvaeq.errors import PluginError
    from cvaeq.query.answer import ask

    model = _ImageModel(bad)
    image = np.zeros((64, 64), np.uint8)
    image[10:20, 10:20] = 1
    with pytest.raises(PluginError, match=r"image model _ImageModel\): " + re.escape(words)):
        ask("P(X | do(shape=square), X=img)", image=image, model=model, story="default", samples=100)
    good = ask("P(X | do(shape=square), X=img)", image=image, model=_ImageModel(None), story="default", samples=100)
    assert good.mean_image.shape == (64, 64)


@pytest.mark.parametrize("build, arch_of, words", [
    (lambda w, d, a: 1 / 0, lambda m: {}, "build() raised ZeroDivisionError"),
    (lambda w, d, a: "a model", lambda m: {}, "build() returned str, not a torch.nn.Module"),
    (lambda w, d, a: torch.nn.Linear(1, 1), lambda m: {}, "build() returned a Linear without pixel_logits() or decode_probs()"),
    (None, lambda m: {"width": float("nan")}, "arch_of() returned what a checkpoint cannot record as JSON"),
    (None, lambda m: ["not", "a", "dict"], "arch_of() returned what a checkpoint cannot record as JSON (list)"),
])
def test_register_image_models_a_family_that_misbehaves_is_one_line_naming_it(register_plugin, tmp_path,
                                                                               build, arch_of, words):
    from cvaeq.model.family import get_family

    real = get_family("causal_vae")
    small = {"patch_channels": 8, "merge_channels": 16, "hidden": 64, "dec_channels": 16, "cell_hidden": 32,
             "dec_hidden": 128, "dec_layers": 1}

    class Family:
        def build(self, world, latent_dim, arch):
            return (build or real.build)(world, latent_dim, {**small, **arch} if build is None else arch)

        def arch_of(self, model):
            return arch_of(model)

    class Models:
        @hookimpl
        def register_image_models(self, register):
            register("wobbly", Family())

    register_plugin(Models(), "toy-wobbly")
    r = CliRunner().invoke(main, ["train", "--family", "wobbly", "--n", "8", "--epochs", "1", "--eval-n", "4",
                                  "--batch", "4", "--out", str(tmp_path / "m.safetensors"), "--quiet",
                                  "--device", "cpu"])
    _one_line_exit_2(r, "plugin 'toy-wobbly' (image-model family 'wobbly')", words)
    assert not (tmp_path / "m.safetensors").exists()


# ----------------------------------------------------------- image mechanisms


def _pixel_model(pixel=None, mechanism=None):
    class Model:
        latent_dim = 1

    if pixel:
        Model.pixel = pixel
    if mechanism:
        Model.image_mechanism = mechanism
    return Model()


def test_register_image_mechanisms_builtins_and_the_choice_by_pixel_kind():
    from cvaeq.world import get_world

    found = plugins.get_image_mechanisms()
    assert {n: (m.pixel, m.plugin) for n, m in found.items() if n in ("bernoulli", "discretised_logistic")} == {
        "bernoulli": ("binary", "cvaeq.default_plugins.image_mechanisms"),
        "discretised_logistic": ("8bit", "cvaeq.default_plugins.image_mechanisms"),
    }
    dsprites = get_world("dsprites")
    assert plugins.image_mechanism_for(_pixel_model(), dsprites).name == "bernoulli"  # no pixel: binary
    with pytest.raises(MechanismError, match="decodes 8bit pixels but world 'dsprites' has binary pixels"):
        plugins.image_mechanism_for(_pixel_model("8bit"), dsprites)
    with pytest.raises(MechanismError, match="'discretised_logistic' models 8bit pixels but world 'dsprites'"):
        plugins.image_mechanism_for(_pixel_model("binary", "discretised_logistic"), dsprites)
    with pytest.raises(MechanismError, match="unknown image mechanism 'nope'; known: bernoulli, discretised_logistic"):
        plugins.image_mechanism_for(_pixel_model("binary", "nope"), dsprites)


def test_register_image_mechanisms_a_plugins_mechanism_is_picked_when_the_model_names_it(register_plugin):
    from cvaeq.mechanisms.image import bernoulli_image
    from cvaeq.world import get_world

    built = []

    def sharp(**params):
        built.append(params)
        return bernoulli_image(**params)

    sharp.pixel = "binary"

    class Sharp:
        @hookimpl
        def register_image_mechanisms(self, register):
            register("sharp", sharp)

    register_plugin(Sharp(), "sharp-pixels")
    chosen = plugins.image_mechanism_for(_pixel_model(mechanism="sharp"), get_world("dsprites"))
    assert (chosen.name, chosen.plugin, chosen.pixel) == ("sharp", "sharp-pixels", "binary")
    assert plugins.describe_plugins()["image_mechanisms"]["sharp"] == "sharp-pixels"
    r = CliRunner().invoke(main, ["plugins"])
    assert "sharp                 sharp-pixels" in r.output.splitlines()
    assert "discretised_logistic  cvaeq.default_plugins.image_mechanisms" in r.output.splitlines()


def test_register_image_mechanisms_twice_or_without_a_pixel_kind(register_plugin, capsys):
    def nokind(**params):
        return None

    class Bad:
        @hookimpl
        def register_image_mechanisms(self, register):
            register("nokind", nokind)

    register_plugin(Bad(), "no-kind")
    assert "nokind" not in plugins.get_image_mechanisms()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "registered image mechanism 'nokind', which has no attribute pixel" in err
    with pytest.raises(PluginError, match="image mechanism 'nokind' is not available"):
        plugins.get_image_mechanism("nokind")

    class Clash:
        @hookimpl
        def register_image_mechanisms(self, register):
            register("bernoulli", nokind)

    nokind.pixel = "binary"
    register_plugin(Clash(), "clash")
    with pytest.raises(PluginError, match="'bernoulli' is registered twice .*'clash'"):
        plugins.get_image_mechanisms()
