"""The explorer's library side: generated from the story's world (dSprites and the pong
plugin's), the true counterfactual under several interventions, answers that do not
depend on who else is asking, and a page that names no world's factors."""

import re
import threading
from pathlib import Path

import numpy as np
import pytest

from cvaeq.evaluation.truth import true_counterfactual, true_counterfactual_of
from cvaeq.serve.explorer import Explorer
from cvaeq.story import load_story
from cvaeq.world import get_world

SERVE = Path(__file__).resolve().parents[2] / "cvaeq" / "serve"


@pytest.mark.parametrize("story", ["default", "pendulum", "pong"])
def test_the_page_is_described_by_the_story_world(story, request):
    if story == "pong":
        request.getfixturevalue("pong")
    ex = Explorer(story=story)
    d = ex.describe()
    world = load_story(story).world
    assert d["world"] == world.name
    assert [f["name"] for f in d["factors"]] == list(world.names)
    for f in d["factors"]:
        assert f["values"] == [world.label(f["name"], k) for k in range(world.sizes[f["name"]])]
        assert f["numeric"] == (f["name"] in world.numeric)
    assert set(d["graph"]["nodes"]) == set(ex.story.graph.order)
    assert set(d["evidence"]) == set(world.names)
    # the first question is answerable as it stands: about the picture of the evidence shown when there is
    # a model (dsprites and pendulum get their shipped ones), else about the factors
    a = ex.ask(d["query"], {"factors": d["evidence"]} if ex.has_model else None, seed=0).to_dict()
    assert a["rung"] == ("counterfactual" if ex.has_model else "interventional")
    assert ex.has_model == (story != "pong")


def test_no_file_of_the_page_names_a_worlds_factor(pong):
    names = set(get_world("dsprites").names) | set(pong.WORLD.names)
    for path in sorted(SERVE.rglob("*")):
        if path.suffix in (".py", ".js", ".html", ".css"):
            text = path.read_text()
            found = sorted(n for n in names if re.search(rf"(?<![\w-]){n}=|[\"']{n}[\"']", text))
            assert not found, f"{path.name} names the factor(s) {found}; read them from the world"


def test_truth_under_several_interventions_sets_each_and_agrees_with_one_at_a_time():
    story = load_story("default")
    w = story.world
    factual = np.array([[2, 5, 0, 16, 16]])
    both = true_counterfactual_of(story, factual, {"posX": np.array([3]), "posY": np.array([7])}, 16, 0)
    assert (both.classes[0, :, w.index("posX")] == 3).all() and (both.classes[0, :, w.index("posY")] == 7).all()
    one = true_counterfactual(story, factual, "posY", np.array([7]), 16, 0)
    again = true_counterfactual_of(story, factual, {"posY": np.array([7])}, 16, 0)
    assert np.array_equal(one.classes, again.classes) and np.array_equal(one.mean_image, again.mean_image)


def test_the_explorer_shows_the_truth_of_two_interventions():
    ex = Explorer()
    ev = {"factors": {f.name: f.label(f.size // 2) for f in ex.world.factors}}
    a = ex.ask("P(X | do(posX=0.2, posY=0.8), X=img)", ev, seed=0)
    assert a.truth_image is not None and a.iou > 0.8
    assert a.truth_factors["posX"]["0.193548"] == 1.0
    # an observational question about the image has no intervention: no truth to show
    assert ex.ask("P(X | X=img)", ev, seed=0).truth_image is None


def test_the_truth_is_given_the_factor_evidence_beside_the_image():
    """The true counterfactual answers the model's question: factor evidence given beside
    X=img is part of the fact, not dropped (it used to be, showing the truth of another question)."""
    ex = Explorer()
    w = ex.world
    heart = {"factors": {"shape": "heart", "scale": "1", "orientation": "0", "posX": "0.5", "posY": "0.5"}}
    turned = w.label("orientation", w.sizes["orientation"] - 1)  # 2 pi: the same picture as 0
    a = ex.ask(f"P(X | do(posY=0.2), X=img, orientation={turned})", heart, seed=0)
    # the factual orientation is the evidence's, so the true counterfactual keeps it (posY does not cause it)
    assert a.truth_factors["orientation"][turned] == 1.0 and a.truth_factors["orientation"]["0"] == 0.0
    assert a.factors["orientation"][turned] == 1.0  # as the model's answer does
    # evidence that contradicts the image (the world draws this heart at posX=0.5): no factual world has
    # both, so there is no truth to show, and the answer says why instead of scoring another question
    b = ex.ask("P(X | do(posY=0.2), X=img, posX=0)", heart, seed=0)
    assert b.truth_image is None and b.iou is None
    d = b.to_dict()
    assert "truth" not in d and "posX=0 " in d["truth_note"] and f"posX={w.label('posX', 15)}" in d["truth_note"]
    # evidence that agrees with the image changes nothing
    c = ex.ask("P(X | do(posY=0.2), X=img, posX=0.5)", heart, seed=0)
    plain = ex.ask("P(X | do(posY=0.2), X=img)", heart, seed=0)
    assert np.array_equal(c.truth_image, plain.truth_image) and c.truth_note is None


def test_answers_do_not_depend_on_who_else_is_asking():
    ex = Explorer(story="default")
    alone = {s: ex.ask("P(posY | do(shape=square))", samples=300, seed=s).to_dict() for s in range(4)}
    got, errors = {}, []

    def client(s):
        try:
            for _ in range(3):
                got.setdefault(s, []).append(ex.ask("P(posY | do(shape=square))", samples=300, seed=s).to_dict())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s, answers in got.items():
        assert all(a == alone[s] for a in answers)


def test_a_model_of_another_world_gets_pictures_truth_and_a_decoder(pong_checkpoint, pong):
    ex = Explorer(model=pong_checkpoint)
    d = ex.describe()
    assert d["world"] == "pong" and d["has_model"]
    query, evidence = ex.first_question()
    a = ex.ask(query, {"factors": evidence}, seed=0)
    world = pong.WORLD
    assert a.answer.mean_image.shape == world.image_shape
    assert set(a.factors) == set(world.names)
    # the truth is the pong renderer's: the intervened factor takes its value in every true world
    (factor, value), = a.interventions.items()
    assert a.truth_factors[factor][value] == 1.0 and 0 <= a.iou <= 1
    assert a.truth_image.shape == world.image_shape
    assert ex.decode(evidence, [0.0] * ex.story.latent_dim).shape == world.image_shape


def test_evidence_the_model_cannot_explain_carries_the_answers_warning():
    import base64
    import io

    from PIL import Image

    ex = Explorer()
    noise = (np.random.default_rng(0).random(ex.world.image_shape) < 0.5).astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    d = ex.ask("P(X | do(shape=square), X=img)", {"png": base64.b64encode(buf.getvalue()).decode()},
               samples=100, seed=0).to_dict()
    assert d["ess"] < 10 and len(d["warnings"]) == 1 and "can hardly explain the evidence" in d["warnings"][0]
    ev = {"factors": {f.name: f.label(f.size // 2) for f in ex.world.factors}}
    assert "warnings" not in ex.ask("P(X | do(shape=square), X=img)", ev, samples=100, seed=0).to_dict()


def test_the_page_shows_the_answers_warnings():
    # the explorer draws a.warnings in a visible line of the answer panel (tests/serve/test_browser.py drives it)
    page = (SERVE / "static" / "index.html").read_text()
    script = (SERVE / "static" / "explorer.js").read_text()
    assert '<p id="warnings"' in page and "a.warnings" in script


# ------------------------------------------------------------ colour pictures


@pytest.fixture
def swatch_explorer():
    """An explorer of the tiny 8-bit RGB world of tests/eightbit.py with its hand-written model."""
    from cvaeq.plugins import get_plugin_manager
    from cvaeq.story import story_from_text

    from ..eightbit import STORY, SwatchModel, SwatchPlugin

    plugin = SwatchPlugin()
    get_plugin_manager().register(plugin, name="swatch-world")
    try:
        yield Explorer(model=SwatchModel(), story=story_from_text(STORY))
    finally:
        get_plugin_manager().unregister(plugin)


def test_a_colour_world_shows_colour_pictures_and_the_truth_beside_the_models(swatch_explorer):
    import base64
    import io

    from PIL import Image
    from starlette.testclient import TestClient

    from cvaeq.serve.app import create_app

    from ..eightbit import render

    ex = swatch_explorer
    out = ex.ask("P(X | do(hue=blue), X=img)", {"factors": {"hue": "red", "size": "4"}}, seed=0)
    pictures = out.pictures
    assert set(pictures) == {"evidence", "samples", "mean", "truth"}
    assert pictures["evidence"].shape == pictures["mean"].shape == pictures["truth"].shape == (3, 8, 8)
    assert all(float(p.min()) >= 0 and float(p.max()) <= 1 for p in pictures.values())
    np.testing.assert_array_equal(np.rint(pictures["evidence"] * 255), render(np.array([[0, 1]]))[0])
    d = out.to_dict()
    assert "iou" not in d["truth"] and 0 <= d["truth"]["l1"] < 0.05  # the model's mean picture near the truth
    # an uploaded RGB PNG is read as the world's levels
    buf = io.BytesIO()
    Image.fromarray(render(np.array([[1, 2]]))[0].transpose(1, 2, 0), "RGB").save(buf, format="PNG")
    got, classes = ex.evidence({"png": base64.b64encode(buf.getvalue()).decode()})
    assert classes is None and np.array_equal(got, render(np.array([[1, 2]]))[0])
    # the decoder view: the mean picture of the levels, colour, on the [0, 1] scale
    decoded = ex.decode({"hue": "green", "size": "6"}, [0.0])
    assert decoded.shape == (3, 8, 8) and abs(decoded - render(np.array([[1, 2]]))[0] / 255).max() < 0.01
    # served as RGB PNGs
    with TestClient(create_app(ex), base_url="http://127.0.0.1:8000") as client:
        r = client.post("/api/query", json={"query": "P(X | do(hue=blue), X=img)",
                                            "image": {"factors": {"hue": "red", "size": "4"}}, "seed": 0})
        assert r.status_code == 200, r.text
        for name in ("evidence", "mean", "samples", "truth"):
            png = client.get(r.json()["images"][name])
            assert png.status_code == 200
            assert Image.open(io.BytesIO(png.content)).mode == "RGB"
