"""resolve() reads the rung of a question, snaps values to the grid and rejects what cannot be answered."""

import numpy as np
import pytest

from cvaeq.worlds.dsprites.factors import VALUES
from cvaeq.errors import QueryError
from cvaeq.query import E, P, do, parse, resolve
from cvaeq.story import load_story, story_from_text

IMAGE = np.zeros((64, 64), dtype=np.uint8)


@pytest.fixture(scope="module")
def story():
    return load_story("default")


@pytest.mark.parametrize(
    "text, rung",
    [
        ("P(shape)", "observational"),  # the prior: no do, the factual scenario alone
        ("P(shape, scale)", "observational"),
        ("P(Z)", "observational"),
        ("P(scale | do(shape=heart))", "interventional"),
        ("E[posY | do(scale=1.0)]", "interventional"),
        ("P(shape | X=img)", "observational"),
        ("P(posY | scale=0.5, posX=0.2)", "observational"),
        ("P(X | do(shape=square), X=img)", "counterfactual"),
        ("P(posY | do(scale=0.5, posX=0.2), shape=heart)", "counterfactual"),
    ],
)
def test_the_rung_follows_from_evidence_and_do(story, text, rung):
    assert resolve(parse(text), story, {"img": IMAGE}).rung == rung


def test_the_mission_query_resolves_to_classes_and_the_bound_image(story):
    r = resolve(parse("P(X | do(shape=square), X=img)"), story, {"img": IMAGE})
    assert r.text == "P(X | do(shape=square), X=img)"
    assert (r.rung, r.expectation, r.targets) == ("counterfactual", False, ("X",))
    assert r.interventions == {"shape": 0}
    assert r.evidence.keys() == {"X"} and r.evidence["X"] is IMAGE


def test_values_snap_to_the_nearest_grid_value(story):
    r = resolve(parse("P(shape | posX=0.52, posY=1, scale=0.74, orientation=1.57)"), story)
    assert r.evidence == {"posX": 16, "posY": 31, "scale": 2, "orientation": 10}
    assert r.evidence["posX"] == int(np.argmin(abs(VALUES["posX"] - 0.52)))
    assert r.evidence["orientation"] == int(np.argmin(abs(VALUES["orientation"] - 1.57)))
    # Half a grid step past either end still snaps to the end value.
    assert resolve(parse("P(shape | scale=0.46)"), story).evidence == {"scale": 0}
    assert resolve(parse("P(shape | posX=-0.01)"), story).evidence == {"posX": 0}


def test_shapes_by_name_and_evidence_order_is_kept(story):
    r = resolve(parse("E[posY | do(posX=0.2, shape=heart), scale=1, shape=ellipse]"), story)
    assert r.expectation and r.targets == ("posY",)
    assert list(r.interventions.items()) == [("posX", 6), ("shape", 2)]
    assert list(r.evidence.items()) == [("scale", 5), ("shape", 1)]


def test_a_target_may_also_be_intervened_on(story):
    r = resolve(parse("P(shape | do(shape=heart))"), story)
    assert r.targets == ("shape",) and r.interventions == {"shape": 2}


def test_trees_built_in_python_resolve_the_same_and_get_columns(story):
    built = P("posY", do(scale=0.5, posX=0.2), shape="heart")
    parsed = parse("P(posY | do(scale=0.5, posX=0.2), shape=heart)")
    a, b = resolve(built, story), resolve(parsed, story)
    assert (a.rung, a.targets, a.interventions, a.evidence) == (b.rung, b.targets, b.interventions, b.evidence)
    with pytest.raises(QueryError) as info:
        resolve(E("shape"), story)
    assert info.value.column == 3  # in the canonical text E[shape]


# text, column of the offending token, words the one-line message must contain
RESOLVE_ERRORS = [
    ("P(colour)", 3, ["unknown variable 'colour'", "known: shape, scale, orientation, posX, posY, X, Z"]),
    ("P(shape | posx=0.5)", 11, ["unknown variable 'posx'", "did you mean posX?"]),
    ("P(shape | do(colour=red))", 14, ["unknown variable 'colour'"]),
    ("P(shape, shape)", 10, ["target shape is listed twice"]),
    ("E[shape]", 3, ["E[] needs a numeric factor", "categorical"]),
    ("E[X | do(shape=heart)]", 3, ["E[] needs a numeric factor"]),
    ("E[Z]", 3, ["E[] needs a numeric factor"]),
    ("P(X | do(X=img))", 10, ["cannot intervene on the image X", "make X the target"]),
    ("P(X | do(Z=0))", 10, ["cannot intervene on Z"]),
    ("P(X | Z=0)", 7, ["Z is latent and cannot be observed"]),
    ("P(X | scale=1.2)", 13, ["scale=1.2 is off the domain", "allowed: 0.5 to 1"]),
    ("P(X | do(orientation=-1))", 22, ["orientation=-1 is off the domain", "0 to 6.28319 radians"]),
    ("P(X | posY=2)", 12, ["posY=2 is off the domain", "allowed: 0 to 1"]),
    ("P(X | shape=circle)", 13, ["unknown shape 'circle'", "allowed: square, ellipse, heart"]),
    ("P(X | shape=2)", 13, ["shape takes a name (square, ellipse, heart)", "the number 2"]),
    ("P(X | shape=img)", 13, ["shape takes a name", "image binding"]),
    ("P(X | do(scale=big))", 16, ["scale takes a number from 0.5 to 1", "the name 'big'"]),
    ("P(shape | posX=img)", 16, ["posX takes a number", "image binding"]),
    ("P(shape | X=square)", 13, ["X takes an image binding", "X=img", "--image"]),
    ("P(shape | X=0.5)", 13, ["X takes an image binding"]),
    ("P(X | do(shape=heart, shape=square))", 23, ["shape is intervened on twice"]),
    ("P(X | do(shape=heart), do(shape=heart))", 27, ["shape is intervened on twice"]),
    ("P(X | shape=heart, shape=heart)", 20, ["shape is observed twice"]),
    ("P(X | scale=0.5, scale=0.51)", 18, ["scale is observed twice"]),
    ("P(X | shape=heart, scale=1, shape=square)", 29, ["contradictory evidence", "shape=heart (column 7)"]),
]


@pytest.mark.parametrize("text, column, words", RESOLVE_ERRORS, ids=[t for t, _, _ in RESOLVE_ERRORS])
def test_errors_name_the_column_and_what_is_allowed(story, text, column, words):
    with pytest.raises(QueryError) as info:
        resolve(parse(text), story, {"img": IMAGE})
    e = info.value
    message = str(e)
    assert e.column == column, message
    assert "\n" not in message and message.endswith(f"(at column {column})")
    for w in words:
        assert w in message
    assert e.caret == text + "\n" + " " * (column - 1) + "^"


def test_an_unbound_image_says_to_pass_one(story):
    with pytest.raises(QueryError, match=r"no image is bound to img; pass --image") as info:
        resolve(parse("P(X | do(shape=square), X=img)"), story)
    assert info.value.column == 27
    with pytest.raises(QueryError, match="no image is bound"):
        resolve(parse("P(shape | X=img)"), story, {"img": None})


NO_HEARTS = """
name = "no-hearts"
[factors.shape]
probs = [0.5, 0.5, 0.0]  # square, ellipse, never a heart
[factors.scale]
parents = ["shape"]
[factors.scale.probs]  # only hearts are ever as big as 1; only ellipses as small as 0.5
square  = [0.0, 0.25, 0.25, 0.25, 0.25, 0.0]
ellipse = [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
heart   = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
[factors.orientation]
probs = "uniform"
[factors.posX]
probs = "uniform"
[factors.posY]
parents = ["scale"]
[factors.posY.normal]
mean = 0.5
sd = 0.2
"""


def test_evidence_impossible_under_the_story_is_refused():
    story = story_from_text(NO_HEARTS, "no-hearts")
    with pytest.raises(QueryError, match=r"impossible evidence: shape=heart has probability 0") as info:
        resolve(parse("P(scale | posX=0.5, shape=heart)"), story)
    assert info.value.column == 21
    # scale=1 needs a heart, which never happens: impossible through its ancestor.
    with pytest.raises(QueryError, match=r"impossible evidence: scale=1 has probability 0"):
        resolve(parse("P(posX | do(shape=square), scale=1)"), story)
    # Interventions may set what could never be observed.
    assert resolve(parse("P(scale | do(shape=heart))"), story).interventions == {"shape": 2}
    assert resolve(parse("P(shape | posY=0.5, scale=0.6)"), story).rung == "observational"


def test_evidence_impossible_only_in_combination_is_refused():
    story = story_from_text(NO_HEARTS, "no-hearts")
    assert resolve(parse("P(posY | scale=0.5)"), story).evidence == {"scale": 0}
    assert resolve(parse("P(posY | shape=square)"), story).evidence == {"shape": 0}
    text = "P(posY | shape=square, scale=0.5)"
    with pytest.raises(QueryError, match=r"shape=square, scale=0\.5 together have probability 0") as info:
        resolve(parse(text), story)
    assert info.value.column == 10
