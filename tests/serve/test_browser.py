"""The explorer in a real browser (headless Chromium, driven by Playwright): a person
loads the page, moves a control, waits for the new answer, and checks what they
would check — the query text changed, the pictures changed the way the
intervention says (read with the model's q(factors | X), and against the true
counterfactual), the DAG cut the right arrows, and the console stayed clean.

Without Chromium these tests skip with a message saying how to install it;
under CI (``CI=true``) they fail instead (.ci/run installs it).
``CVAEQ_SCREENSHOT=docs/img/explorer.png`` saves README's screenshot there.
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cvaeq.serve import live

why = live.missing()
if why:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from cvaeq.cli import main  # noqa: E402
from cvaeq.query.answer import read_factors  # noqa: E402
from cvaeq.serve.app import create_app  # noqa: E402
from cvaeq.serve.explorer import Explorer  # noqa: E402

#: The one console message a refused question leaves (the browser logs every 4xx).
REFUSED = "Failed to load resource: the server responded with a status of 400"


@pytest.fixture(scope="module")
def explorer():
    return Explorer()


@pytest.fixture(scope="module")
def url(explorer):
    with live.live_server(create_app(explorer)) as base:
        yield base


@pytest.fixture(scope="module")
def chromium():
    with live.browser() as b:
        yield b


@pytest.fixture
def page(chromium, url):
    """A fresh page on the explorer, its first answer drawn; ``page.problems`` collects
    console errors and uncaught exceptions."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.problems = []
    p.on("console", lambda m: p.problems.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: p.problems.append(str(e)))
    p.goto(url + "/")
    p.wait_for_function("() => window.cvaeq.answers >= 1", timeout=60_000)
    yield p
    context.close()


def wait_for_query(page, text):
    page.wait_for_function("(t) => window.cvaeq.last && window.cvaeq.last.query === t", arg=text, timeout=60_000)
    page.wait_for_function("() => !document.getElementById('error').hidden || window.cvaeq.lastError === null")


def shown(page, selector):
    """The picture an ``<img>`` shows, as the server sent it, at the world's size."""
    src = page.get_attribute(selector, "src")
    blob = page.request.get(page.url.rstrip("/") + src).body()
    a = np.asarray(Image.open(io.BytesIO(blob)).convert("L")) / 255.0
    return a[::2, ::2]


def label(explorer, factor, index):
    return explorer.world.label(factor, index)


def test_moving_a_control_redraws_the_answer_as_the_intervention_says(page, explorer):
    world = explorer.world
    first = page.input_value("#query")
    assert first == explorer.first_question()[0]
    # the first question intervenes on a factor no other factor depends on; move its slider
    factor = first.split("do(")[1].split("=")[0]
    index = 2
    value = label(explorer, factor, index)
    page.fill(f"#dov-{factor}", str(index))
    expected = f"P(X | do({factor}={value}), X=img)"
    wait_for_query(page, expected)
    assert page.input_value("#query") == expected
    # the model's mean image reads as the intervened value; the rest stays the evidence's
    read = read_factors(explorer.loaded.image_model, shown(page, "#img-mean"), world)
    step = abs(world.values[factor][1] - world.values[factor][0])
    assert abs(float(read[factor]) - float(value)) <= step + 1e-9
    evidence = page.evaluate("() => window.cvaeq.last.evidence_factors")
    assert read[world.names[0]] == evidence[world.names[0]]
    # and it matches the story's true counterfactual, drawn beside it
    truth = shown(page, "#img-truth") > 0.5
    mean = shown(page, "#img-mean") > 0.5
    assert (truth & mean).sum() / max((truth | mean).sum(), 1) > 0.8
    assert "IoU" in page.text_content("#iou")
    # the DAG: exactly the arrows into the intervened node are cut
    cut = page.eval_on_selector_all("#dag [data-cut='true']", "els => els.map(e => e.dataset.edge)")
    assert sorted(cut) == sorted(f"{p}->{factor}" for p in explorer.story.graph.parents(factor))
    assert page.problems == []


def test_the_sample_grid_changes_with_the_control(page, explorer):
    before = page.get_attribute("#img-samples", "src")
    grid_before = shown(page, "#img-samples")
    page.fill("#ev-" + explorer.world.names[-2], "3")  # move the evidence (not the intervened factor)
    page.wait_for_function("(s) => document.getElementById('img-samples').getAttribute('src') !== s",
                           arg=before, timeout=60_000)
    page.wait_for_function("() => document.getElementById('img-samples').complete")
    assert not np.array_equal(shown(page, "#img-samples"), grid_before)
    assert page.problems == []


def test_a_typed_query_sets_the_controls(page, explorer):
    world = explorer.world
    f0, f1 = world.names[0], world.names[-2]
    v0, v1 = label(explorer, f0, 0), label(explorer, f1, 1)
    text = f"P(X | do({f0}={v0}, {f1}={v1}), X=img)"
    page.fill("#query", text)
    page.press("#query", "Enter")
    wait_for_query(page, text)
    assert page.is_checked(f"#do-{f0}") and page.is_checked(f"#do-{f1}")
    assert page.input_value(f"#dov-{f0}") == "0" and page.input_value(f"#dov-{f1}") == "1"
    assert [n for n in world.names if page.is_checked(f"#do-{n}")] == [f0, f1]
    assert page.is_checked("#observe")
    # a factor question: the target control follows, bar charts replace the pictures
    text = f"P({f0} | do({f1}={v1}))"
    page.fill("#query", text)
    page.press("#query", "Enter")
    wait_for_query(page, text)
    assert page.input_value("#target") == f0 and not page.is_checked("#observe")
    assert page.is_hidden("#fig-mean")
    bars = page.eval_on_selector_all(f"#bars [data-factor='{f0}'] .bar", "els => els.map(e => +e.dataset.p)")
    assert len(bars) == world.sizes[f0] and sum(bars) == pytest.approx(1.0, abs=1e-6)
    assert page.problems == []


def test_a_bad_query_shows_the_clis_line_and_the_page_keeps_working(page):
    bad = "P(X | do(colour=square), X=img)"
    page.fill("#query", bad)
    page.press("#query", "Enter")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    cli = CliRunner().invoke(main, ["query", bad, "--image", "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"])
    assert page.text_content("#error") == cli.output.strip()
    good = "P(X | X=img)"
    page.fill("#query", good)
    page.press("#query", "Enter")
    wait_for_query(page, good)
    assert page.is_hidden("#error")
    assert [p for p in page.problems if REFUSED not in p] == []


def test_an_uploaded_png_becomes_the_evidence(page, explorer, tmp_path):
    classes = explorer.factor_classes({f.name: f.label(1) for f in explorer.world.factors})
    image = explorer.render(classes)
    path = tmp_path / "mine.png"
    Image.fromarray(image * 255).save(path)
    before = page.evaluate("() => window.cvaeq.answers")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("(n) => window.cvaeq.answers > n", arg=before, timeout=60_000)
    assert np.array_equal(shown(page, "#img-evidence") > 0.5, image.astype(bool))
    assert page.is_hidden("#fig-truth")  # the factors of an upload are unknown
    assert "uploaded" in page.text_content("#evidence-source")
    assert page.problems == []


def test_evidence_the_model_cannot_explain_shows_a_warning_line(page, explorer, tmp_path):
    noise = (np.random.default_rng(0).random(explorer.world.image_shape) < 0.5).astype(np.uint8) * 255
    path = tmp_path / "noise.png"
    Image.fromarray(noise).save(path)
    assert page.is_hidden("#warnings")  # the first question's evidence is a rendered picture
    before = page.evaluate("() => window.cvaeq.answers")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("(n) => window.cvaeq.answers > n", arg=before, timeout=60_000)
    assert page.is_visible("#warnings")
    assert page.text_content("#warnings").startswith("warning: the model can hardly explain the evidence: ESS ")
    # a picture the model draws again: the line goes
    classes = explorer.factor_classes({f.name: f.label(1) for f in explorer.world.factors})
    drawn = tmp_path / "drawn.png"
    Image.fromarray(explorer.render(classes) * 255).save(drawn)
    before = page.evaluate("() => window.cvaeq.answers")
    page.set_input_files("#upload", str(drawn))
    page.wait_for_function("(n) => window.cvaeq.answers > n", arg=before, timeout=60_000)
    assert page.is_hidden("#warnings")
    assert page.problems == []


def test_the_decoder_view_follows_its_sliders(page):
    page.wait_for_function("() => document.getElementById('img-decoded').complete")
    before = page.get_attribute("#img-decoded", "src")
    page.fill("#z-0", "2")
    page.wait_for_function("(s) => document.getElementById('img-decoded').getAttribute('src') !== s", arg=before)
    page.wait_for_function("() => document.getElementById('img-decoded').complete "
                           "&& document.getElementById('img-decoded').naturalWidth > 0")
    assert "z=2" in page.get_attribute("#img-decoded", "src")
    assert page.problems == []


def test_screenshot(page, tmp_path):
    """Saves the page as a person sees it (README's picture when CVAEQ_SCREENSHOT names a path)."""
    out = tmp_path / "explorer.png"
    page.screenshot(path=str(out), full_page=True)
    with Image.open(out) as im:
        assert im.size[0] >= 1000
    target = os.environ.get("CVAEQ_SCREENSHOT")
    if target:
        Path(target).write_bytes(out.read_bytes())


def open_page(chromium, base):
    """A fresh page on ``base`` once its first answer is shown, and the list its console errors go to."""
    context = chromium.new_context()
    p = context.new_page()
    problems = []
    p.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    p.goto(base + "/")
    p.wait_for_function("() => window.cvaeq.answers >= 1", timeout=60_000)
    return context, p, problems


def test_the_page_is_generated_from_another_world(pong, chromium):
    ex = Explorer(story="pong")
    with live.live_server(create_app(ex)) as base:
        context, p, problems = open_page(chromium, base)
        names = p.eval_on_selector_all("#evidence-controls [data-factor]", "els => els.map(e => e.dataset.factor)")
        assert names == list(pong.WORLD.names)
        nodes = p.eval_on_selector_all("#dag [data-node]", "els => els.map(e => e.dataset.node)")
        assert set(nodes) == set(ex.story.graph.order)
        options = p.eval_on_selector_all("#target option", "els => els.map(e => e.value)")
        assert options == list(pong.WORLD.names)  # no image model: no X
        # move an intervention: the answer's bars follow the story's true tables
        f = pong.WORLD.names[1]
        p.check(f"#do-{f}")
        p.fill(f"#dov-{f}", "7")
        value = pong.WORLD.label(f, 7)
        p.wait_for_function("(v) => window.cvaeq.last && window.cvaeq.last.query.includes(v)", arg=f"{f}={value}")
        assert problems == []
        context.close()


def test_a_model_of_another_world_gets_its_own_controls_pictures_and_decoder(pong_checkpoint, pong, chromium):
    ex = Explorer(model=pong_checkpoint)
    world = pong.WORLD
    with live.live_server(create_app(ex)) as base:
        context, p, problems = open_page(chromium, base)
        assert p.eval_on_selector_all("#target option", "els => els.map(e => e.value)") == ["X", *world.names]
        for name in ("evidence", "truth", "mean", "samples"):
            assert p.is_visible(f"#img-{name}")
        mean = p.get_attribute("#img-mean", "src")
        blob = p.request.get(base + mean).body()
        with Image.open(io.BytesIO(blob)) as im:
            assert im.size == (2 * world.image_shape[1], 2 * world.image_shape[0])
        decoder = p.eval_on_selector_all("#decoder-controls [data-factor]", "els => els.map(e => e.dataset.factor)")
        assert decoder == list(world.names)
        assert p.eval_on_selector_all("#z-controls input", "els => els.length") == ex.story.latent_dim
        assert problems == []
        context.close()


def test_a_world_without_a_renderer_shows_its_files_pictures_and_says_it_has_no_truth(files_explorer, chromium):
    from ..eightbit import HUES, SIZES

    with live.live_server(create_app(files_explorer)) as base:
        context, p, problems = open_page(chromium, base)
        # no factor controls for the evidence (nothing can be drawn): a picture of the files, by row
        assert p.eval_on_selector_all("#evidence-controls [data-factor]", "els => els.length") == 0
        assert p.input_value("#ev-row") == "6"
        assert "has no renderer" in p.text_content("#evidence-source")
        # the first question is a counterfactual of that picture: a sentence where the truth would be
        assert window_last(p)["evidence_factors"] == {"hue": "blue", "size": "2"}
        assert "has no renderer" in p.text_content("#truth-note") and not p.is_visible("#img-truth")
        assert p.is_visible("#img-evidence") and p.is_visible("#img-mean")
        p.fill("#ev-row", "2")
        p.dispatch_event("#ev-row", "change")
        want = {"hue": list(HUES)[0], "size": str(SIZES[2])}
        p.wait_for_function(
            "(w) => window.cvaeq.last && JSON.stringify(window.cvaeq.last.evidence_factors) === w",
            arg='{"hue":"%s","size":"%s"}' % (want["hue"], want["size"]),
            timeout=60_000,
        )
        assert "picture 2 of the world's files" in p.text_content("#evidence-source")
        assert problems == []
        context.close()


def window_last(page):
    """The last answer's JSON as the page holds it."""
    return page.evaluate("() => window.cvaeq.last")
