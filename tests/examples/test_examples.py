"""The example scripts run as `python examples/NAME.py` and say what they claim."""

import dataclasses
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cvaeq.story import load_story

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_script(name, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return stop.value.code


def test_do_vs_see_prints_both_answers_beside_the_exact_ones(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["do_vs_see.py", "--samples", "3000"])
    runpy.run_path(str(EXAMPLES / "do_vs_see.py"), run_name="__main__")
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: [float(v) for v in line.split()[1:]]
        for line in out.splitlines()
        if line.split()[:1] in (["square"], ["ellipse"], ["heart"])
    }
    for see, see_exact, do, do_exact in rows.values():
        assert see == pytest.approx(see_exact, abs=0.05) and do == pytest.approx(do_exact, abs=0.05)
    assert rows["square"][0] > rows["square"][2] + 0.3  # seeing big says square; making big does not
    assert "E[posY | scale=1]" in out and "E[posY | do(scale=1)]" in out


@pytest.fixture
def tiny_checkpoint(tmp_path):
    from cvaeq.model.checkpoint import save_checkpoint
    from cvaeq.model.cvae import CausalVAE
    from cvaeq.model.networks import ArchConfig

    story = load_story("default")
    sizes = {
        f.name: story.latent_dim
        if f.name == "latent_dim"
        else (4,) * len(f.default)
        if isinstance(f.default, tuple)
        else 4
        for f in dataclasses.fields(ArchConfig)
    }
    torch.manual_seed(0)
    tables = {f: np.log(story.table(f)) for f in story.factors}
    return save_checkpoint(
        tmp_path / "tiny.safetensors", CausalVAE(ArchConfig(**sizes)), story, tables, train_config={"n": 0}, epoch=0
    )


def test_heart_to_square_writes_the_pictures(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    out = tmp_path / "answer"
    assert run_script("heart_to_square.py", monkeypatch, "--model", tiny_checkpoint, "--out", out, "--samples", 20) == 0
    text = capsys.readouterr().out
    assert "q(factors | X) reads off the image:" in text and "P(X | do(shape=square), X=img)" in text
    for sub in ("square", "same-heart-as-square"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["evidence.png", "mean.png", "samples.png"]


def test_heart_to_square_without_a_model_says_what_to_do(monkeypatch, capsys):
    import cvaeq.loading as loading

    monkeypatch.setattr(loading, "shipped_checkpoint", lambda: None)
    assert run_script("heart_to_square.py", monkeypatch) == 2
    assert "needs a trained model: pass --model CKPT" in capsys.readouterr().err


def test_pendulum_light_scores_the_shipped_models_answer_against_the_truth(tmp_path, monkeypatch, capsys):
    import re

    out = tmp_path / "pendulum"
    assert run_script("pendulum_light.py", monkeypatch, "--out", out, "--samples", 60) == 0
    text = capsys.readouterr().out
    score, nothing = (
        float(v) for v in re.search(r"true counterfactual: ([\d.]+) \(doing nothing: ([\d.]+)\)", text).groups()
    )
    assert score > 0.85 and nothing < 0.6
    model_e, true_e = (float(v) for v in re.search(r"= ([\d.]+)\s+\(the truth: ([\d.]+);", text).groups())
    assert abs(model_e - true_e) < 1.0 and true_e > 12  # the light moved left: the shadow went right
    assert sorted(p.name for p in out.iterdir()) == ["evidence.png", "mean.png", "samples.png", "truth.png"]


def test_colour_pendulum_scores_the_shipped_models_mean_picture_against_the_truth(tmp_path, monkeypatch, capsys):
    import re

    out = tmp_path / "colour"
    assert run_script("colour_pendulum.py", monkeypatch, "--out", out, "--samples", 40) == 0
    text = capsys.readouterr().out
    l1, db, l1_still, db_still = (
        float(v)
        for v in re.search(
            r"L1 ([\d.]+), PSNR ([\d.]+) dB \(doing nothing: L1 ([\d.]+), PSNR ([\d.]+) dB\)", text
        ).groups()
    )
    assert l1 < 0.02 and db > 25 and l1_still > 2 * l1 and db_still < db  # the light and the shadow moved
    assert re.search(r"P\(X \| X=img\): 0 of \d+ bytes differ", text)  # exact abduction
    model_e, true_e = (float(v) for v in re.search(r"= ([\d.]+)\s+\(the truth: ([\d.]+);", text).groups())
    assert abs(model_e - true_e) < 1.0 and true_e > 12  # the light moved left: the shadow went right
    assert sorted(p.name for p in out.iterdir()) == ["evidence.png", "mean.png", "samples.png", "truth.png"]


def test_morphomnist_answers_a_real_digit_and_keeps_the_law(tmp_path, monkeypatch, capsys):
    import re

    out = tmp_path / "mm"
    assert run_script("morphomnist.py", monkeypatch, "--out", out, "--samples", 40) == 0
    text = capsys.readouterr().out
    assert "row 7001: digit=2" in text
    thick = re.search(r"do\(thickness=4.5\).*thickness=([\d.]+), intensity=([\d.]+)", text)
    assert abs(float(thick.group(1)) - 4.5) < 0.5 and float(thick.group(2)) > 200  # thicker, so brighter
    bright = re.search(r"do\(intensity=250\).*thickness=([\d.]+), intensity=([\d.]+)", text)
    assert float(bright.group(1)) < 3.5 and float(bright.group(2)) > 180  # brighter, not much thicker
    l1, l1_still = (float(v) for v in re.search(r"L1 of the model's mean picture to it ([\d.]+) \(to the evidence: ([\d.]+)\)", text).groups())
    assert l1 < 0.7 * l1_still  # the model's brightened digit is nearer the true one than the digit itself
    assert (out / "brighter" / "truth.png").is_file()
    assert re.search(r"P\(X \| X=img\): 0 of \d+ bytes differ", text)  # exact abduction
    model_e, closed = (
        float(v) for v in re.search(r"= ([\d.]+) .*closed form for the measured labels: ([\d.]+)", text).groups()
    )
    assert abs(model_e - closed) < 10  # the law's counterfactual, up to the posterior of (t, i) given the picture
    strokes = [int(v) for v in re.search(r"at thickness = .*pixels: ([\d, ]+)\)", text).group(1).split(", ")]
    assert strokes == sorted(strokes) and strokes[-1] > strokes[0] + 100  # thicker strokes, brighter by the law
    assert {"evidence.png", "thicker", "brighter", "thickness_strip.png", "intensity_strip.png"} <= {
        p.name for p in out.iterdir()
    }
