"""Notebook display: an answer shows its pictures and tables, a story its DAG."""

import io

import numpy as np
from PIL import Image

from cvaeq.query.answer import ask
from cvaeq.story import load_story

HEART = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"


def test_an_image_answer_shows_its_pictures_inline():
    a = ask("P(X | do(posY=0.2), X=img)", image=HEART, samples=20, seed=0)
    html = a._repr_html_()
    assert html.count("<img") == 3 and html.count("data:image/png;base64,") == 3
    assert a.query in html and f"{a.ess:.1f}" in html
    grid = np.asarray(Image.open(io.BytesIO(a._repr_png_())))
    assert grid.shape == (3 * 64 + 2 * 2, 8 * 64 + 7 * 2)  # 20 samples, 8 a row


def test_a_factor_answer_shows_a_table_per_target_and_no_png():
    a = ask("P(shape, scale | do(posY=0.2))", story="default", samples=500, seed=0)
    html = a._repr_html_()
    assert html.count("<table") == 2 and "<img" not in html
    for value, p in a.distribution["shape"].items():
        assert f"<td>{value}</td><td style='font-family:monospace'>{p:.4f}</td>" in html
    assert a._repr_png_() is None


def test_a_story_shows_its_dag():
    story = load_story("default")
    svg = story._repr_svg_()
    assert svg.startswith("<svg")
    assert sorted(svg.split('data-node="')[i].split('"')[0] for i in range(1, len(story.graph.order) + 1)) \
        == sorted(story.graph.order)
    assert svg.count("data-edge=") == len(story.graph.edges) and "data-cut" not in svg


def test_a_notebook_shows_the_answers_warnings():
    from dataclasses import replace

    a = ask("P(shape | scale=1)", story="default", samples=200, seed=0)
    assert "warning" not in a._repr_html_()
    warned = replace(a, warnings=("the model can hardly explain the evidence: ESS 1.2 of 200 <b>",))
    assert "warning: the model can hardly explain the evidence: ESS 1.2 of 200 &lt;b&gt;" in warned._repr_html_()


def test_a_colour_answer_shows_colour_pictures_inline():
    import base64
    import re

    from cvaeq.plugins import get_plugin_manager
    from cvaeq.story import story_from_text

    from .eightbit import STORY, SwatchModel, SwatchPlugin, render

    plugin = SwatchPlugin()
    get_plugin_manager().register(plugin, name="swatch-world")
    try:
        a = ask("P(X | do(hue=green), X=img)", image=render(np.array([[0, 1]]))[0], model=SwatchModel(),
                story=story_from_text(STORY), samples=20, seed=0)
    finally:
        get_plugin_manager().unregister(plugin)
    html = a._repr_html_()
    blobs = [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]
    assert len(blobs) == 3
    modes = [Image.open(io.BytesIO(b)).mode for b in blobs]
    assert modes == ["RGB", "RGB", "RGB"]
    evidence = np.asarray(Image.open(io.BytesIO(blobs[0])))[::2, ::2]  # shown twice the size
    np.testing.assert_array_equal(evidence, render(np.array([[0, 1]]))[0].transpose(1, 2, 0))
    grid = np.asarray(Image.open(io.BytesIO(a._repr_png_())))
    assert grid.shape == (3 * 8 + 2 * 2, 8 * 8 + 7 * 2, 3)
