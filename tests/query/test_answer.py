"""Answering queries: values of all three kinds on the story SCM, X answers with a
render-based image model, JSON shape, determinism and errors."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from cvaeq.worlds.dsprites.factors import FACTORS, SIZES, VALUES, label
from cvaeq.worlds.dsprites.render import render
from cvaeq.errors import CvaeqError, QueryError
from cvaeq.query.answer import IMAGE_SAMPLES, NEEDS_MODEL, ask, shipped_checkpoint
from cvaeq.story import load_story, story_from_text

STORY = load_story("default")
SHAPES = ("square", "ellipse", "heart")
HEART = {"shape": 2, "scale": 3, "orientation": 5, "posX": 12, "posY": 18}
HEART_TEXT = "shape=heart,scale=0.8,orientation=0.805537,posX=0.387097,posY=0.580645"


def classes(d):
    return np.array([[d[f] for f in FACTORS]], dtype=np.int64)


class RenderModel:
    """A training-free image model: the decoder is the renderer (pixels on with
    probability 0.98 where the shape is, 0.02 elsewhere, Z ignored);
    q(factors | X) scores a small bank of known images by how many pixels differ;
    q(Z | X, factors) is Z's prior."""

    latent_dim = STORY.latent_dim

    def __init__(self, bank):
        self.bank = np.concatenate([classes(b) for b in bank])
        self.images = torch.from_numpy(render(self.bank)).float().flatten(1)

    def decode_probs(self, c, z):
        return torch.from_numpy(render(c.numpy())).float() * 0.96 + 0.02

    def factor_logits(self, x):
        d = torch.cdist(x.flatten(1).float(), self.images, p=1)  # [S, bank] pixels that differ
        score = -d
        out = {}
        for i, f in enumerate(FACTORS):
            logits = torch.full((x.shape[0], SIZES[f]), -50.0)
            for k in np.unique(self.bank[:, i]):
                logits[:, k] = torch.logsumexp(score[:, self.bank[:, i] == k], dim=1)
            out[f] = logits - torch.logsumexp(logits, 1, keepdim=True)
        return out

    def z_posterior(self, x, c):
        return torch.zeros(x.shape[0], self.latent_dim), torch.ones(x.shape[0], self.latent_dim)


SQUARE_HELD = {**HEART, "shape": 0}  # the same heart as a square, nothing else changed
MODEL = RenderModel([HEART, SQUARE_HELD, {**HEART, "shape": 1}, {**HEART, "scale": 0, "shape": 0}])
HELD = "do(shape=square, scale=0.8, posX=0.387097, posY=0.580645)"


def tolerance(n, p=0.5):
    return 4 * np.sqrt(p * (1 - p) / n)


# --- factor queries on the story's true tables ---------------------------------------------


def test_interventional_equals_the_story_row():
    a = ask("P(scale | do(shape=heart))", story="default", samples=4000, seed=1)
    assert a.rung == "interventional" and a.ess == 4000
    got = np.array([a.distribution["scale"][label("scale", k)] for k in range(6)])
    np.testing.assert_allclose(got, STORY.table("scale")[2], atol=tolerance(4000))


def test_observational_matches_bayes_on_the_story_tables():
    a = ask("P(shape | scale=1)", story="default", samples=10000, seed=2)
    prior = STORY.table("shape")
    bayes = prior * STORY.table("scale")[:, 5]
    bayes /= bayes.sum()
    got = np.array([a.distribution["shape"][s] for s in SHAPES])
    assert a.rung == "observational" and a.ess < 10000
    np.testing.assert_allclose(got, bayes, atol=tolerance(a.ess))


def test_intervening_on_an_effect_leaves_the_cause_at_its_prior():
    see = ask("P(shape | scale=1)", story="default", samples=4000, seed=3).distribution["shape"]
    do = ask("P(shape | do(scale=1))", story="default", samples=4000, seed=3).distribution["shape"]
    np.testing.assert_allclose([do[s] for s in SHAPES], STORY.table("shape"), atol=tolerance(4000))
    assert see["square"] > do["square"] + 0.2  # seeing a big shape is evidence of a square; making it big is not


def test_expectation_of_posY_under_do_scale():
    a = ask("E[posY | do(scale=1)]", story="default", samples=8000, seed=4)
    # exact: sum over shape and posX of P(shape) P(posX | shape) E[posY | scale=1, posX]
    p_posx = STORY.table("shape") @ STORY.table("posX")  # [32]
    e_posy = STORY.table("posY")[5] @ VALUES["posY"]  # [32] over posX
    exact = float(p_posx @ e_posy)
    assert set(a.to_dict()) == {"query", "rung", "expectation", "samples", "ess", "model", "story"}
    assert a.expectation["posY"] == pytest.approx(exact, abs=4 * 0.3 / np.sqrt(8000))


def test_expectation_under_evidence_is_weighted_and_matches_bayes():
    """E[posX | scale=1]: the particles draw shape from its prior and are weighted
    by P(scale=1 | shape) (unequal weights); the exact answer by Bayes over shape."""
    a = ask("E[posX | scale=1]", story="default", samples=8000, seed=11)
    posterior = STORY.table("shape") * STORY.table("scale")[:, 5]
    posterior /= posterior.sum()
    exact = float(posterior @ (STORY.table("posX") @ VALUES["posX"]))
    assert a.rung == "observational" and a.ess < 6000  # the weights are far from equal
    assert a.expectation["posX"] == pytest.approx(exact, abs=4 * 0.3 / np.sqrt(a.ess))
    prior_mean = float(STORY.table("shape") @ (STORY.table("posX") @ VALUES["posX"]))
    assert abs(exact - prior_mean) > 8 * 0.3 / np.sqrt(a.ess)  # what ignoring the weights would give


def test_counterfactual_gumbel_max_matches_rejection_sampling():
    # P(scale | do(shape=square), shape=heart, scale=0.5): keep the Gumbel noise that made a
    # heart small, replay it through the square's row.
    a = ask("P(scale | do(shape=square), shape=heart, scale=0.5)", story="default", samples=6000, seed=5)
    rng = np.random.default_rng(0)
    g = rng.gumbel(size=(400_000, 6))
    keep = np.argmax(np.log(STORY.table("scale")[2]) + g, 1) == 0
    cf = np.argmax(np.log(STORY.table("scale")[0]) + g[keep], 1)
    expected = np.bincount(cf, minlength=6) / keep.sum()
    got = np.array([a.distribution["scale"][label("scale", k)] for k in range(6)])
    assert a.rung == "counterfactual"
    np.testing.assert_allclose(got, expected, atol=tolerance(a.ess) + 0.01)


@pytest.mark.parametrize(
    "text, target, value",
    [
        ("P(shape | do(scale=1), shape=heart)", "shape", "heart"),  # a non-descendant keeps its factual value
        ("P(scale | do(shape=heart), shape=heart, scale=0.7)", "scale", "0.7"),  # the factual value changes nothing
    ],
)
def test_counterfactual_invariants(text, target, value):
    a = ask(text, story="default", samples=500, seed=6)
    assert a.distribution[target][value] == pytest.approx(1.0)


def test_several_targets_give_their_marginals_in_the_query_language():
    a = ask("P(shape, posX)", story="default", samples=500, seed=7)
    d = json.loads(a.to_json())
    assert list(d["distribution"]) == ["shape", "posX"]
    assert list(d["distribution"]["shape"]) == list(SHAPES)
    assert list(d["distribution"]["posX"]) == [label("posX", k) for k in range(32)]
    for dist in d["distribution"].values():
        assert sum(dist.values()) == pytest.approx(1.0)
    assert d["samples"] == 500 and d["ess"] == 500 and d["model"] is None and d["story"] == "default"


def test_latent_target_reports_mean_and_sd_per_dimension():
    a = ask("P(Z)", story="default", samples=4000, seed=8)
    d = a.to_dict()
    assert len(d["mean"]["Z"]) == len(d["sd"]["Z"]) == STORY.latent_dim
    np.testing.assert_allclose(d["mean"]["Z"], 0, atol=0.1)
    np.testing.assert_allclose(d["sd"]["Z"], 1, atol=0.1)


class WideZProposal(RenderModel):
    """The render model with q(Z | X, factors) = Normal(0.2, 1.2) in every dimension:
    the decoder ignores Z, so Z's posterior given an image is its prior N(0, I), and
    the particles carry unequal weights prior / proposal (ESS about two thirds of
    the particles: no resampling)."""

    def z_posterior(self, x, c):
        return torch.full((x.shape[0], self.latent_dim), 0.2), torch.full((x.shape[0], self.latent_dim), 1.2)


@pytest.mark.parametrize("text, keys", [
    ("P(Z | X=img)", ["Z"]),
    ("P(Z, Z @ do(shape=square) | X=img)", ["Z", "Z @ do(shape=square)"]),
])
def test_z_mean_and_sd_under_evidence_are_weighted(text, keys):
    """With unequal weights, Z's mean and sd are the weighted ones, computed here
    by hand from the particles, and they are the prior's 0 and 1 (the answer is
    known: Z does not shape this decoder's images), not the proposal's 0.2 and 1.2."""
    model = WideZProposal([HEART, SQUARE_HELD, {**HEART, "shape": 1}])
    a = ask(text, image=HEART_TEXT, model=model, samples=2000, seed=9)
    w = a.result.weights.double()
    assert float(w.max() / w.min()) > 10 and 600 < a.ess < 1950  # unequal weights, kept (not resampled)
    for key in keys:
        z = a.result.samples[key].double()
        mean = (w[:, None] * z).sum(0)
        sd = (w[:, None] * (z - mean) ** 2).sum(0).sqrt()
        np.testing.assert_allclose(a.latent[key]["mean"], mean.numpy(), atol=1e-9)
        np.testing.assert_allclose(a.latent[key]["sd"], sd.numpy(), atol=1e-9)
        se = 1 / np.sqrt(a.ess)  # the standard error of the mean; the sd's is about 1 / sqrt(2 ESS)
        np.testing.assert_allclose(a.latent[key]["mean"], 0, atol=4 * se)
        np.testing.assert_allclose(a.latent[key]["sd"], 1, atol=4 * se / np.sqrt(2))
        unweighted = z.std(0, correction=0)
        assert float((unweighted - sd).abs().max()) > 0.05  # the weights matter here


def test_same_seed_same_answer_other_seed_other_answer():
    text = "P(posX | do(shape=heart))"
    assert ask(text, story="default", seed=3).to_json() == ask(text, story="default", seed=3).to_json()
    assert ask(text, story="default", seed=3).to_json() != ask(text, story="default", seed=4).to_json()


def test_table_shows_every_value_with_its_probability():
    table = ask("P(shape | do(scale=1))", story="default", samples=300, seed=0).to_table()
    assert "interventional" in table and "ESS: 300.0" in table
    for s in SHAPES:
        assert any(line.startswith(s) for line in table.splitlines())


# --- X queries with the render model ------------------------------------------------------


def test_mission_query_holding_the_rest_gives_the_square(tmp_path):
    a = ask(f"P(X | {HELD}, X=img)", image=HEART_TEXT, model=MODEL, seed=0, out=tmp_path)
    square = render(classes(SQUARE_HELD))[0]
    assert a.rung == "counterfactual" and a.samples == IMAGE_SAMPLES
    assert np.abs(a.mean_image - square).mean() < 0.03
    assert a.predicted == {f: label(f, SQUARE_HELD[f]) for f in FACTORS}
    d = json.loads(a.to_json())
    assert set(d["images"]) == {"evidence", "samples", "mean"}
    evidence = np.asarray(Image.open(d["images"]["evidence"]))
    np.testing.assert_array_equal(evidence, render(classes(HEART))[0] * 255)
    mean = np.asarray(Image.open(d["images"]["mean"]))
    assert mean.shape == (64, 64) and mean.dtype == np.uint8
    assert np.asarray(Image.open(d["images"]["samples"])).shape == (64 * 8 + 14, 64 * 8 + 14)


def test_counterfactual_image_keeps_what_shape_does_not_cause():
    a = ask("P(X, orientation | do(shape=square), X=img)", image=HEART_TEXT, model=MODEL, seed=1)
    assert a.distribution["orientation"][label("orientation", HEART["orientation"])] == pytest.approx(1.0)
    assert a.mean_image.shape == (64, 64)


def test_observing_an_image_reads_its_factors():
    a = ask("P(shape | X=img)", image=render(classes(HEART))[0], model=MODEL, samples=200, seed=2)
    assert a.rung == "observational" and a.ess > 1
    assert a.distribution["shape"]["heart"] > 0.99


def test_image_answers_without_evidence_have_no_evidence_picture(tmp_path):
    a = ask("P(X | do(shape=ellipse))", model=MODEL, samples=20, seed=3, out=tmp_path)
    assert set(a.images) == {"samples", "mean"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mean.png", "samples.png"]
    grid = np.asarray(Image.open(a.images["samples"]))
    assert grid.shape == (3 * 64 + 4, 8 * 64 + 14)  # 20 images: 3 rows of 8


def test_image_answers_are_reproducible_to_the_byte(tmp_path):
    text = "P(X | do(shape=square), X=img)"
    one = ask(text, image=HEART_TEXT, model=MODEL, seed=5, out=tmp_path / "1")
    two = ask(text, image=HEART_TEXT, model=MODEL, seed=5, out=tmp_path / "2")
    for name in ("evidence", "samples", "mean"):
        assert (tmp_path / "1" / f"{name}.png").read_bytes() == (tmp_path / "2" / f"{name}.png").read_bytes()
    assert one.predicted == two.predicted


# --- errors ----------------------------------------------------------------------------------


#: the default story edited (no model was trained on it): a question about X has no model to answer it
EDITED = story_from_text(load_story("default").text.replace("sd = 0.22", "sd = 0.3"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(text="P(X | do(shape=square))", story=EDITED), NEEDS_MODEL),
        (dict(text="P(shape | X=img)", image=HEART_TEXT, story=EDITED), NEEDS_MODEL),
        (dict(text="P(shape)", image=HEART_TEXT, story="default"), "does not use it"),
        (dict(text="P(shape)", story="default", samples=0), "positive integer"),
        (dict(text="P(X | do(shape=square))", model=MODEL, samples=10**6), "too many"),
        (dict(text="P(shape)", story="default", samples=10**7), "use at most 1,000,000"),
        (dict(text="P(shape)", model="nowhere.safetensors"), "no such checkpoint"),
        (dict(text="P(shape)", model="nowhere.safetensors", story="default"), "not both"),
        (dict(text="P(shape)", model=object()), "has no pixel_logits() or decode_probs()"),
        (dict(text="P(shape)", story="default", seed=-1), "seed must be an integer from 0 to 9,223,372,036,854,775,807, got -1"),
        (dict(text="P(shape)", story="default", seed=1.5), "seed must be an integer from 0 to"),
        (dict(text="P(shape)", story="default", seed=2**64), "got 18446744073709551616"),
        (dict(text="P(shape)", story="default", seed=True), "seed must be an integer"),
        (dict(text="P(shape | X=img)", image=[[0, 1]], story="default"), "got list"),
        (dict(text="P(shape)", story=123), "a story is a registered name or a path to a TOML file, not int 123"),
        (dict(text="P(shape)", story=["default"]), "not list ['default']"),
        (dict(text="P(X)", model=MODEL, out=5), "out must be a folder name (a str or path), got int"),
        (dict(text=123), "a query must be text, got int"),
        (dict(text="P(shape)", story="default", samples=2.0), "samples must be a positive integer, got 2.0"),
    ],
)
def test_errors_say_what_to_do(kwargs, message):
    with pytest.raises(CvaeqError, match=re.escape(message)):
        ask(**kwargs)


def test_nothing_is_written_for_a_query_that_fails(tmp_path):
    with pytest.raises(QueryError):
        ask("P(X | do(shape=square), X=img)", image=HEART_TEXT, model=MODEL, samples=10**6, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_shipped_checkpoint_answers_the_mission_query(tmp_path):
    """The installed weights turn the heart into a square with no training (README's first command)."""
    path = shipped_checkpoint()
    assert path is not None and path.name == "default.safetensors", "cvaeq/weights/default.safetensors is missing"
    assert path.stat().st_size <= 20 * 2**20
    a = ask("P(X | do(shape=square), X=img)", image=HEART_TEXT, samples=50, seed=0, out=tmp_path)
    assert a.model == str(path) and a.rung == "counterfactual"
    assert set(a.images) == {"evidence", "samples", "mean"} and set(a.predicted) == set(FACTORS)
    assert a.predicted["shape"] == "square"
    seen = ask("P(shape | X=img)", image=HEART_TEXT, samples=50, seed=0)
    assert seen.distribution["shape"]["heart"] > 0.99


def test_pictures_are_written_only_when_asked(tmp_path):
    a = ask("P(X | do(shape=heart))", model=MODEL, samples=8, seed=0)
    assert a.images == {} and a.to_dict()["images"] is None
    assert "images: not written" in a.to_table()
    written = a.save_images(tmp_path)
    assert set(written.images) == {"samples", "mean"} and (tmp_path / "mean.png").is_file()
    with pytest.raises(QueryError, match="no image target"):
        ask("P(shape)", story="default", samples=10).save_images(tmp_path)


def test_docstring_examples():
    import doctest

    import cvaeq.query.answer

    result = doctest.testmod(cvaeq.query.answer)
    assert result.attempted > 0 and result.failed == 0


def test_table_leaves_out_impossible_values_of_many_valued_factors():
    a = ask("P(orientation | do(scale=1), orientation=0)", story="default", samples=100, seed=0)
    table = a.to_table().splitlines()
    assert table[-2].split()[:2] == ["0", "1.0000"]
    assert table[-1] == "(39 more values below 0.0001 not shown; --json lists all)"
    assert len(a.to_dict()["distribution"]["orientation"]) == 40


def test_numpy_integers_are_integers_for_seed_and_samples():
    a = ask("P(shape)", story="default", samples=np.int64(300), seed=np.int64(4))
    b = ask("P(shape)", story="default", samples=300, seed=4)
    assert a.samples == 300 and a.distribution == b.distribution


@pytest.mark.parametrize("seed, message", [("-1", "-1 is not in the range 0<=x<=9223372036854775807"),
                                           ("1.5", "'1.5' is not a valid integer")])
def test_the_cli_refuses_the_same_seeds_in_one_line(seed, message):
    from click.testing import CliRunner

    from cvaeq.cli import main

    r = CliRunner().invoke(main, ["query", "P(shape)", "--story", "default", "--seed", seed])
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("seed", [-1, 1.5, 2**64, True, "0"])
def test_the_engines_python_api_checks_the_seed_too(seed):
    from cvaeq.engine import infer, infer_scenarios
    from cvaeq.scm import build_scm

    scm = build_scm(load_story("default"))
    calls = [lambda: infer(scm, ["shape"], seed=seed), lambda: infer_scenarios(scm, {"s": ("shape", {})}, seed=seed),
             lambda: scm.sample(3, seed=seed)]
    for call in calls:
        with pytest.raises(QueryError, match="seed must be an integer from 0 to 9,223,372,036,854,775,807"):
            call()


@pytest.mark.skipif(shipped_checkpoint() is None, reason="no shipped checkpoint")
@pytest.mark.parametrize("text", ["P(Z)", "P(Z | shape=heart, scale=1)", "P(Z, Z @ do(shape=square) | posX=0.5)",
                                  "P(shape, Z @ do(scale=0.5))"])
def test_a_question_about_z_decodes_no_picture_and_answers_the_same(text, monkeypatch):
    """Z (with factors) is answered without the image node, bit for bit as with it: X is the
    graph's last node, so the noise drawn before it is the same. Each particle used to decode a
    picture nobody asked for (``P(Z) --samples 1000000`` grew to 23 GB)."""
    from cvaeq.engine import infer_scenarios
    from cvaeq.loading import load_mechanisms
    from cvaeq.query import parse, resolve
    from cvaeq.query.answer import answer_query

    mech = load_mechanisms()
    r = resolve(parse(text), mech.story, {})
    with monkeypatch.context() as m:
        def no_picture(*a, **k):
            raise AssertionError("a picture was decoded for a question about Z")

        for name in ("pixel_logits", "decode_probs"):
            m.setattr(type(mech.image_model), name, no_picture)
        a = answer_query(r, mech, samples=300, seed=5)
    full = mech.scm(True)
    assert "X" in full.nodes and "X" not in mech.scm(False).nodes
    evidence = {v: torch.tensor(c) for v, c in r.evidence.items()}
    targets = {v.key: (v.variable, {f: torch.tensor(c) for f, c in v.scenario.items()}) for v in r.variables}
    want = infer_scenarios(full, targets, evidence, num_particles=300, seed=5)
    assert set(a.result.samples) == set(want.samples)
    for key in want.samples:
        assert torch.equal(a.result.samples[key], want.samples[key]), key
    assert torch.equal(a.result.weights, want.weights)
