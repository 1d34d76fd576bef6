"""Story files: the default story's dependencies, and validation errors that
name the file, the node and the fix."""

import numpy as np
import pytest

from cvaeq.worlds.dsprites.factors import FACTORS, SIZES
from cvaeq.errors import StoryError
from cvaeq.story import IMAGE, LATENT, load_story, story_from_text

BASE = {
    "shape": 'parents = []\nprobs = [0.35, 0.35, 0.30]',
    "scale": 'parents = []\nprobs = "uniform"',
    "orientation": 'parents = []\nprobs = "uniform"',
    "posX": 'parents = []\nprobs = "uniform"',
    "posY": 'parents = []\nprobs = "uniform"',
}


def _text(**override):
    specs = {**BASE, **override}
    return "\n".join(f"[factors.{f}]\n{specs[f]}\n" for f in specs if specs[f] is not None)


def _error(text, source="bad.toml"):
    with pytest.raises(StoryError) as err:
        story_from_text(text, source=source)
    message = str(err.value)
    assert message.startswith(f"{source}:"), message  # names the file
    return message


def test_base_text_is_valid():
    story = story_from_text(_text(), source="ok.toml")
    assert set(story.factors) == set(FACTORS)


def test_default_story_has_the_required_dependencies():
    story = load_story("default")
    g = story.graph
    assert "shape" in story.parents("scale")
    assert "scale" in story.parents("posY")
    assert any(len(story.parents(f)) >= 2 for f in FACTORS)
    childless = [f for f in FACTORS if g.children(f) == (IMAGE,)]
    assert childless, "some factor must have no children but X"
    assert set(g.parents(IMAGE)) == set(FACTORS) | {LATENT}
    assert g.parents(LATENT) == ()
    for f in FACTORS:
        t = story.table(f)
        assert t.shape == tuple(SIZES[p] for p in story.parents(f)) + (SIZES[f],)
        np.testing.assert_allclose(t.sum(-1), 1.0)
        assert (t > 0).all(), f"{f}: every value should stay possible"
    # the dependencies are real: the conditional rows differ
    scale = story.table("scale")
    assert np.abs(scale[0] - scale[2]).sum() > 0.5
    assert "#" in story.text  # the story is told in comments


def test_load_story_by_path_and_unknown_name(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(_text())
    assert load_story(p).source == str(p)
    with pytest.raises(StoryError, match="unknown story 'nope'; known: colour_pendulum, default"):
        load_story("nope")
    with pytest.raises(StoryError, match="no such story file"):
        load_story(tmp_path / "absent.toml")


def test_cycle_names_the_nodes_and_the_fix():
    msg = _error(_text(scale='parents = ["posY"]\nprobs = "uniform"', posY='parents = ["scale"]\nprobs = "uniform"'))
    assert "cycle" in msg and "scale" in msg and "posY" in msg
    assert "remove one of these parent links" in msg


def test_unknown_factor_and_unknown_parent():
    msg = _error(_text() + "\n[factors.colour]\nparents = []\nprobs = [1.0]\n")
    assert "unknown factor 'colour'" in msg and "shape, scale" in msg
    msg = _error(_text(scale='parents = ["size"]\nprobs = "uniform"'))
    assert "factor 'scale'" in msg and "unknown parent 'size'" in msg and "parents must be among" in msg


def test_missing_factor():
    msg = _error(_text(posY=None))
    assert "'posY' is not declared" in msg and "[factors.posY]" in msg


def test_unknown_value_in_a_keyed_table():
    text = _text(scale='parents = ["shape"]\n[factors.scale.probs]\n'
                 'square = [0.5, 0.5, 0, 0, 0, 0]\ncircle = [0.5, 0.5, 0, 0, 0, 0]\nheart = [1, 0, 0, 0, 0, 0]')
    msg = _error(text)
    assert "factor 'scale'" in msg and "unknown value 'circle' of parent 'shape'" in msg
    assert "allowed: square, ellipse, heart" in msg


def test_missing_row_in_a_keyed_table():
    text = _text(scale='parents = ["shape"]\n[factors.scale.probs]\n'
                 'square = [1, 0, 0, 0, 0, 0]\nellipse = [1, 0, 0, 0, 0, 0]')
    msg = _error(text)
    assert "no row for shape=heart" in msg and "one row per value" in msg


def test_unknown_value_in_a_normal_offset():
    text = _text(posX='parents = ["shape"]\n[factors.posX.normal]\nmean = 0.5\nsd = 0.2\n'
                 'offset.shape = { blob = 0.1 }')
    msg = _error(text)
    assert "factor 'posX'" in msg and "unknown value 'blob'" in msg


def test_wrong_table_size():
    msg = _error(_text(shape="parents = []\nprobs = [0.5, 0.5]"))
    assert "factor 'shape'" in msg and "shape (2,), expected (3,)" in msg
    msg = _error(_text(scale='parents = ["shape"]\nprobs = [[0.5, 0.5, 0, 0, 0, 0]]'))
    assert "factor 'scale'" in msg and "expected (3, 6)" in msg


def test_rows_that_do_not_sum_to_one_name_the_row_and_the_fix():
    msg = _error(_text(shape="parents = []\nprobs = [0.5, 0.5, 0.5]"))
    assert "factor 'shape'" in msg and "sum to 1.5, not 1" in msg and "rescale" in msg
    rows = "[[1, 0, 0, 0, 0, 0], [0.5, 0.6, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]]"
    msg = _error(_text(scale=f'parents = ["shape"]\nprobs = {rows}'))
    assert "factor 'scale'" in msg and "shape=ellipse" in msg and "sum to 1.1" in msg


def test_negative_probabilities():
    msg = _error(_text(shape="parents = []\nprobs = [1.5, -0.5, 0.0]"))
    assert "non-negative" in msg


def test_not_toml():
    assert "not valid TOML" in _error("[factors\n")


def test_zero_probabilities_are_never_drawn_and_warn_nothing():
    story = story_from_text(_text(shape="parents = []\nprobs = [0.5, 0.5, 0.0]"), source="zero.toml")
    classes = story.sample(2000, np.random.default_rng(0))  # warnings are errors in tests
    assert set(np.unique(classes[:, 0])) == {0, 1}
    heart = classes[:1].copy()
    heart[0, 0] = 2
    assert story.log_prob(heart)[0] == -np.inf
    assert np.isfinite(story.log_prob(classes)).all()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("latent_dim = 6", "latent_dims = 6"), "unknown key 'latent_dims'; a story's keys are"),
    (lambda t: "mechanisms = 'x'\n" + t, "unknown key 'mechanisms'"),
    (lambda t: t.replace("[factors.orientation]\nparents = []", "[factors.orientation]\nparent = []"),
     "factor 'orientation': unknown key 'parent'; a factor's keys are parents, probs, normal, continuous, mechanism"),
])
def test_a_key_with_a_typo_is_an_error_naming_the_known_keys(edit, message):
    from cvaeq.story import load_story, story_from_text

    text = load_story("default").text
    with pytest.raises(StoryError, match=message):
        story_from_text(edit(text))


def test_world_is_a_known_key():
    from cvaeq.story import load_story, story_from_text

    assert story_from_text('world = "dsprites"\n' + load_story("default").text).world.name == "dsprites"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("sd = 0.22", "sd = inf"), "sd in \\[normal\\] must be a finite number"),
    (lambda t: t.replace("mean = 0.5", "mean = 1e308"), "so far off the grid"),
    (lambda t: t.replace("coef = { scale = 1.4, posX = -0.2 }", "coef = { scale = 1e308, posX = 1e308 }"),
     "so far off the grid"),
    (lambda t: t.replace("square = -0.22", 'square = "x"'), "offset.shape.square in \\[normal\\] must be a finite"),
    (lambda t: t.replace("coef = { scale = 1.4, posX = -0.2 }", "coef = 3"), "coef and offset must be tables"),
    (lambda t: t.replace("probs = [0.35, 0.35, 0.30]", "probs = [true, false, false]"), "probs must be numbers"),
    (lambda t: t.replace('name = "default"', "name = 5"), "name must be a string"),
])
def test_numeric_edge_cases_of_a_story_are_story_errors_without_warnings(edit, message):
    import warnings

    text = load_story("default").text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way
        with pytest.raises(StoryError, match=message):
            story_from_text(edit(text))


@pytest.mark.parametrize("sd", ["1e-3", "1e-200", "1e-320"])
def test_a_narrow_sd_puts_the_mass_on_the_nearest_grid_value(sd):
    # exp(-(d/sd)^2 / 2) underflows at every grid value; the mean is on the grid,
    # so this is no "far off the grid" but a (nearly) deterministic factor
    import warnings

    text = load_story("default").text.replace("sd = 0.22", f"sd = {sd}").replace("floor = 0.10", "floor = 0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        story = story_from_text(text)
    table = np.asarray(story.table("posX"))  # [shape, posX]: means 0.28, 0.5 and 0.72
    np.testing.assert_allclose(table.sum(1), 1.0)
    grid = story.world.values["posX"]
    for row, mean in zip(table, (0.28, 0.5, 0.72)):
        nearest = np.abs(grid - mean) <= np.abs(grid - mean).min() + 1e-12  # 0.5 lies between two: a tie
        np.testing.assert_allclose(row[nearest], 1 / nearest.sum(), atol=1e-12)
        np.testing.assert_allclose(row[~nearest], 0, atol=1e-12)


def test_a_mean_far_off_the_grid_is_still_refused_with_the_grid_and_sd():
    text = load_story("default").text.replace("mean = 0.5", "mean = 1e6").replace("sd = 0.22", "sd = 1e-3")
    with pytest.raises(StoryError, match=r"mean 1e\+06 is so far off the grid \(0 to 1\) .* at sd 0.001"):
        story_from_text(text)


@pytest.mark.parametrize("law, what", [
    ('["shadow_length"]', "got a list"),
    ('{ name = "shadow_length" }', "got a table"),
    ("3", "got int"),
])
def test_a_law_that_is_not_a_name_is_a_story_error(law, what):
    text = load_story("pendulum").text.replace('law = "shadow_length"', f"law = {law}")
    with pytest.raises(StoryError, match=f"law in \\[normal\\] must be the name of a law in quotes.*{what}.*"
                                         "has laws: shadow_length, shadow_position"):
        story_from_text(text)


@pytest.mark.parametrize("fn, message", [
    (lambda *a: 1 / 0, "failed at .*ZeroDivisionError"),
    (lambda *a: float("nan"), "gave nan .*not a finite number"),
    (lambda *a: "far", "gave 'far'"),
])
def test_a_law_that_misbehaves_is_a_story_error_naming_it(fn, message, monkeypatch):
    # a law is a world plugin's code: what it returns is checked where the story reads it
    from cvaeq.world import Law, get_world

    world = get_world("pendulum")
    monkeypatch.setitem(world.laws, "shadow_length", Law(world.laws["shadow_length"].args, fn, "broken"))
    with pytest.raises(StoryError, match=f"law 'shadow_length' of world 'pendulum' {message}"):
        story_from_text(load_story("pendulum").text)


def test_load_story_of_a_number_is_a_story_error():
    with pytest.raises(StoryError, match=r"a story is a registered name or a path to a TOML file, not int 123"):
        load_story(123)


def test_a_story_read_again_gets_tables_of_its_own():
    # [normal] tables are built once per process (cvaeq.story._normal_table); a story that changes
    # its copy in place must not change the next story read
    first = load_story("pendulum")
    first.tables["shadow_length"][...] = 0.0
    again = load_story("pendulum")
    assert np.allclose(again.tables["shadow_length"].sum(-1), 1.0)
    assert again.tables["shadow_length"] is not first.tables["shadow_length"]
