"""`cvaeq query` from the command line: JSON of all three kinds, X answers with a
small checkpoint, --image forms, determinism to the byte, exit code 2 on bad input."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cvaeq.cli import main
from cvaeq.worlds.dsprites.factors import FACTORS
from cvaeq.story import load_story

HEART = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"
MISSION = "P(X | do(shape=square), X=img)"


def run(*args):
    return CliRunner().invoke(main, ["query", *map(str, args)])


def tiny_config(ArchConfig, latent_dim):
    """The architecture at 4 channels/units per layer, whatever its fields are called."""
    sizes = {}
    for f in dataclasses.fields(ArchConfig):
        default = f.default
        sizes[f.name] = latent_dim if f.name == "latent_dim" else (4,) * len(default) if isinstance(default, tuple) else 4
    return ArchConfig(**sizes)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny untrained causal VAE saved as a real checkpoint (answers are not good, but real)."""
    from cvaeq.model.checkpoint import save_checkpoint
    from cvaeq.model.cvae import CausalVAE
    from cvaeq.model.networks import ArchConfig

    story = load_story("default")
    torch.manual_seed(0)
    model = CausalVAE(tiny_config(ArchConfig, story.latent_dim))
    tables = {f: np.log(story.table(f)) for f in story.factors}
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, model, story, tables, train_config={"n": 0}, epoch=0)


def ok_json(result):
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def one_line_exit_2(result, message):
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "query, rung",
    [
        ("P(scale | do(shape=heart))", "interventional"),
        ("P(shape | scale=1)", "observational"),
        ("P(scale | do(shape=square), shape=heart, scale=0.5)", "counterfactual"),
    ],
)
def test_factor_json_has_the_documented_keys(query, rung):
    d = ok_json(run(query, "--story", "default", "--samples", 300, "--json"))
    assert list(d) == ["query", "rung", "distribution", "samples", "ess", "model", "story"]
    assert d["query"] == query and d["rung"] == rung and d["samples"] == 300
    target = query[2:query.index(" ")]
    assert sum(d["distribution"][target].values()) == pytest.approx(1)
    assert 0 < d["ess"] <= 300 and d["model"] is None


def test_interventional_values_follow_the_story():
    d = ok_json(run("P(scale | do(shape=heart))", "--story", "default", "--samples", 4000, "--seed", 3, "--json"))
    got = list(d["distribution"]["scale"].values())
    assert list(d["distribution"]["scale"]) == ["0.5", "0.6", "0.7", "0.8", "0.9", "1"]
    np.testing.assert_allclose(got, load_story("default").table("scale")[2], atol=0.03)


def test_expectation_and_latent_json():
    d = ok_json(run("E[posY | do(scale=1)]", "--story", "default", "--json"))
    assert set(d["expectation"]) == {"posY"} and "distribution" not in d and d["samples"] == 1000
    d = ok_json(run("P(Z)", "--story", "default", "--samples", 50, "--json"))
    assert len(d["mean"]["Z"]) == len(d["sd"]["Z"]) == load_story("default").latent_dim


def test_table_output_by_default():
    r = run("P(shape | do(scale=1))", "--story", "default", "--samples", 200)
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "P(shape | do(scale=1))" and "rung: interventional" in lines[1]
    assert [line.split()[0] for line in lines[-3:]] == ["square", "ellipse", "heart"]


def test_same_seed_same_stdout():
    args = ("P(posX | do(shape=heart), posY=0.5)", "--story", "default", "--seed", 11, "--json")
    assert run(*args).stdout == run(*args).stdout


def test_mission_query_writes_the_pngs(ckpt, tmp_path):
    d = ok_json(run(MISSION, "--image", HEART, "--model", ckpt, "--out", tmp_path, "--json"))
    assert d["rung"] == "counterfactual" and d["samples"] == 100 and d["model"] == str(ckpt)
    assert d["images"] == {k: str(tmp_path / f"{k}.png") for k in ("evidence", "samples", "mean")}
    assert set(d["predicted"]) == set(FACTORS)
    assert np.asarray(Image.open(d["images"]["mean"])).shape == (64, 64)
    assert np.asarray(Image.open(d["images"]["samples"])).shape == (64 * 8 + 14, 64 * 8 + 14)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence.png", "mean.png", "samples.png"]


def test_out_defaults_to_cvaeq_out_in_the_working_folder(ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = ok_json(run("P(X | do(shape=heart))", "--model", ckpt, "--samples", 5, "--json"))
    assert d["images"] == {"samples": "cvaeq-out/samples.png", "mean": "cvaeq-out/mean.png"}
    assert (tmp_path / "cvaeq-out" / "mean.png").is_file()


def test_image_answers_are_byte_for_byte_reproducible(ckpt, tmp_path):
    outs = []
    for k in ("a", "b"):
        r = run(MISSION, "--image", HEART, "--model", ckpt, "--seed", 4, "--samples", 30, "--out", tmp_path / k, "--json")
        outs.append(ok_json(r))
    for name in ("evidence", "samples", "mean"):
        assert (tmp_path / "a" / f"{name}.png").read_bytes() == (tmp_path / "b" / f"{name}.png").read_bytes()
    assert {k: v for k, v in outs[0].items() if k != "images"} == {k: v for k, v in outs[1].items() if k != "images"}


@pytest.mark.parametrize("form", ["png", "npy", "factors"])
def test_image_forms_give_the_same_answer(ckpt, tmp_path, form):
    from cvaeq.images import load_image

    heart = load_image(HEART)
    if form == "png":
        image = tmp_path / "h.png"
        Image.fromarray(heart * 255).save(image)
    elif form == "npy":
        image = tmp_path / "h.npy"
        np.save(image, heart)
    else:
        image = HEART
    d = ok_json(run("P(shape | X=img)", "--image", image, "--model", ckpt, "--samples", 40, "--json"))
    reference = ok_json(run("P(shape | X=img)", "--image", HEART, "--model", ckpt, "--samples", 40, "--json"))
    assert d == reference


@pytest.mark.parametrize(
    "args, message",
    [
        (["P(shape | scale=3)", "--story", "default"], "scale=3 is off the domain; allowed: 0.5 to 1 (at column 17)"),
        (["P(shape | ", "--story", "default"], "the query ends too early"),
        (["P(colour)", "--story", "default"], "unknown variable 'colour'"),
        ([MISSION, "--story", "default"], "no image is bound to img"),
        (["P(shape | X=img)", "--story", "default", "--image", "nope.png"], "nope.png: no such image file"),
        (["P(shape | X=img)", "--story", "default", "--image", "shape=heart"], "missing factor(s)"),
        (["P(shape)", "--story", "default", "--image", HEART], "does not use it"),
        (["P(shape)", "--story", "nosuch"], "unknown story 'nosuch'"),
        (["P(shape)", "--model", "nowhere.safetensors"], "no such checkpoint"),
        (["P(shape)", "--samples", "0"], "Invalid value for '--samples'"),
        (["P(shape)", "--samples", "many"], "Invalid value for '--samples'"),
        (["P(shape)", "--seed", "-1"], "Invalid value for '--seed'"),
        (["P(shape)", "--colour"], "No such option '--colour'"),
        ([], "Missing argument 'QUERY'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    one_line_exit_2(run(*args), message)


def test_wrong_image_size_is_exit_2(ckpt, tmp_path):
    image = tmp_path / "small.npy"
    np.save(image, np.zeros((32, 32), dtype=np.uint8))
    one_line_exit_2(run("P(shape | X=img)", "--image", image, "--model", ckpt), "the image is 32×32")


def test_corrupt_checkpoint_is_exit_2(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 3)
    one_line_exit_2(run("P(shape)", "--model", bad), "truncated checkpoint")


def test_out_that_is_a_file_is_exit_2_and_writes_nothing(ckpt, tmp_path):
    out = tmp_path / "taken"
    out.write_text("mine")
    one_line_exit_2(run(MISSION, "--image", HEART, "--model", ckpt, "--out", out, "--samples", 5), "--out")
    assert out.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_unwritable_out_is_exit_2(ckpt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_exit_2(run(MISSION, "--image", HEART, "--model", ckpt, "--out", blocker / "sub", "--samples", 5),
                    "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_answer_does_not_depend_on_threads(tmp_path):
    from click.testing import CliRunner

    from cvaeq.cli import main
    from cvaeq.loading import shipped_checkpoint

    if shipped_checkpoint() is None:
        pytest.skip("the shipped checkpoint is not installed")
    import torch

    before = torch.get_num_threads()
    try:
        outs = [CliRunner().invoke(main, ["query", "P(X | do(shape=square), X=img)", "--image",
                                          "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6", "--samples", "30",
                                          "--threads", str(t), "--json", "--out", str(tmp_path / str(t))])
                for t in (1, 2)]
    finally:
        torch.set_num_threads(before)
    assert [o.exit_code for o in outs] == [0, 0]
    a, b = (json.loads(o.output) for o in outs)
    assert a.pop("images") and b.pop("images")
    assert a == b
    assert (tmp_path / "1" / "mean.png").read_bytes() == (tmp_path / "2" / "mean.png").read_bytes()


def test_a_story_alone_answers_image_queries_with_the_model_shipped_for_it(tmp_path):
    # --story default: the shipped dSprites checkpoint was trained on it, so a question about X uses it
    result = run(MISSION, "--story", "default", "--image", HEART, "--out", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model"].endswith("default.safetensors")
    # an edited story under the same name has no model trained on it: one line, exit 2
    edited = tmp_path / "edited.toml"
    edited.write_text(load_story("default").text.replace("sd = 0.22", "sd = 0.3"))
    for args in ([MISSION, "--image", HEART], ["P(X | do(shape=square))"]):
        result = run(*args, "--story", edited, "--out", tmp_path / "b")
        assert result.exit_code == 2 and "this query needs a trained model" in result.output
        assert result.output.strip().count("\n") == 0
