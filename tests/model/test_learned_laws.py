"""A story that leaves a continuous factor's law to be learned (``learn = true``): ``cvaeq train``
fits it from the training rows, the checkpoint records it, and a loaded model's SCM follows it."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.engine import infer
from cvaeq.errors import CheckpointError, StoryError
from cvaeq.loading import load_model
from cvaeq.model.checkpoint import _digest, load_checkpoint
from cvaeq.model.labelled_data import labelled_split
from cvaeq.story import load_story
from cvaeq.world import get_world

#: DeepSCM's Morpho-MNIST graph; thickness's law stated, intensity's form given (a sigmoid in
#: DeepSCM's frame 64 .. 255) and its numbers (bias, weight, scale) left to be learned.
STORY = """\
name = "morpho_learned"
world = "morphomnist"
latent_dim = 3

[factors.digit]
parents = []
probs = "uniform"

[factors.thickness]
parents = []
[factors.thickness.continuous]
offset = 0.5
noise = { kind = "gamma", shape = 10, rate = 5 }

[factors.intensity]
parents = ["thickness"]
[factors.intensity.continuous]
learn = true
link = "sigmoid"
offset = 64
gain = 191
"""
N = 1000  # training rows: the law's standard errors below are argued for this many


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``cvaeq train`` on the learned story: 1 epoch on the first N rows, a small network."""
    folder = tmp_path_factory.mktemp("learned")
    (folder / "learned.toml").write_text(STORY)
    out = folder / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--story", str(folder / "learned.toml"), "--n", str(N), "--epochs",
                                    "1", "--batch", "250", "--eval-n", "32", "--arch", "channels=4,hidden=16",
                                    "--threads", "1", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.stderr


def test_train_prints_the_fitted_law_in_one_line(trained):
    _, stderr = trained
    lines = [line for line in stderr.splitlines() if line.startswith("fitted law of intensity: ")]
    assert len(lines) == 1, stderr
    assert "intensity = 64 + 191 * sigmoid(" in lines[0] and "* thickness" in lines[0]
    assert lines[0].endswith(f"e ~ normal ({N} training rows)")
    assert "fitted law of thickness" not in stderr  # its law is stated: the story's


def test_the_checkpoint_records_laws_close_to_deepscms(trained):
    """The labels were drawn by DeepSCM's intensity = 64 + 191 sigmoid(2 t - 5 + 0.5 e) (then measured
    on the morphed pictures). A least-squares fit in the logit space on N = 1000 rows has standard
    errors about 0.5 / (sd(t) sqrt(N)) = 0.5 / (0.63 * 31.6) = 0.025 on the weight, 0.07 on the bias
    (the weight's times mean(t) = 2.5, plus 0.5 / sqrt(N)), and 0.5 / sqrt(2N) = 0.011 on the scale;
    the tolerances are 4 of them (with room for the measurement's own error)."""
    out, _ = trained
    ckpt = load_checkpoint(out)
    assert set(ckpt.laws) == {"intensity"} and ckpt.meta["laws"] == ckpt.laws
    law = ckpt.laws["intensity"]
    assert (law["parents"], law["link"], law["offset"], law["gain"], law["noise"]) == (
        ["thickness"], "sigmoid", 64.0, 191.0, "normal")
    assert law["weights"]["thickness"] == pytest.approx(2.0, abs=0.1)
    assert law["bias"] == pytest.approx(-5.0, abs=0.3)
    assert law["scale"] == pytest.approx(0.5, abs=0.045)
    # the loaded story is the story as the model knows it: its sampler follows the fitted law
    fitted = ckpt.story.law("intensity")
    assert (fitted.bias, fitted.weights["thickness"], fitted.scale) == (law["bias"], law["weights"]["thickness"],
                                                                         law["scale"])
    assert ckpt.story.text == STORY and ckpt.story.sample(5, np.random.default_rng(0)).shape == (5, 3)
    # fitted from the training rows, the first N: the same fit as the labels' own (never the held-out rows)
    from cvaeq.invertible import fit_laws

    (_, factors), _ = labelled_split(get_world("morphomnist"), n_train=N)
    assert fit_laws(ckpt.story, factors, only=["intensity"]) == ckpt.laws


def test_the_loaded_models_counterfactual_follows_the_fitted_law(trained):
    """E[intensity | do(thickness=4), thickness=2, intensity=150]: abduction inverts the fitted law
    exactly and the counterfactual replays the noise, so every particle is
    64 + 191 sigmoid(logit((150 - 64) / 191) + w (4 - 2)) with the fitted weight w."""
    out, _ = trained
    model = load_model(out)
    w = load_checkpoint(out).laws["intensity"]["weights"]["thickness"]
    y = (150 - 64) / 191
    expected = 64 + 191 / (1 + math.exp(-(math.log(y / (1 - y)) + w * (4 - 2))))
    r = infer(model.scm(False), ["intensity"], {"thickness": 4.0}, {"thickness": 2.0, "intensity": 150.0}, 20,
              seed=0)
    assert r.samples["intensity"].tolist() == pytest.approx([expected] * 20, rel=1e-12)
    # and not the guessless story's (it has none) nor DeepSCM's weight of exactly 2
    assert abs(w - 2.0) > 1e-9
    res = CliRunner().invoke(main, ["query", "--model", str(out), "--json",
                                    "E[intensity | do(thickness=4), thickness=2, intensity=150]"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["expectation"]["intensity"] == pytest.approx(expected, abs=1e-9)  # 10 decimals


def _rewrite_meta(src, dst, change):
    """A copy of checkpoint ``src`` with its meta changed by ``change`` and the digest recomputed
    (anyone can recompute it: the loader must check the fields themselves)."""
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    blob = src.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])["__metadata__"]
    meta = json.loads(header["meta"])
    change(meta)
    tensors = st_load(blob)
    meta_json = json.dumps(meta, sort_keys=True)
    header = {**header, "meta": meta_json, "sha256": _digest(tensors, meta_json)}
    dst.write_bytes(st_save(tensors, metadata=header))
    return dst


HOSTILE = [
    ("not a table", lambda m: m.__setitem__("laws", [1, 2])),
    ("too many", lambda m: m.__setitem__("laws", {f"f{i}": {} for i in range(300)})),
    ("not a factor", lambda m: m.__setitem__("laws", {"digit": m["laws"]["intensity"]})),
    ("other parents", lambda m: m["laws"]["intensity"].__setitem__("parents", [])),
    ("negative gain", lambda m: m["laws"]["intensity"].__setitem__("gain", -1.0)),
    ("NaN weight", lambda m: m["laws"]["intensity"]["weights"].__setitem__("thickness", float("nan"))),
    ("unknown link", lambda m: m["laws"]["intensity"].__setitem__("link", "os.system")),
    ("unknown key", lambda m: m["laws"]["intensity"].__setitem__("code", "rm -rf /")),
]


@pytest.mark.parametrize("what, change", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_laws_field_is_refused_naming_the_fix(trained, tmp_path, what, change):
    out, _ = trained
    bad = _rewrite_meta(out, tmp_path / "bad.safetensors", change)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    message = str(info.value)
    assert "metadata field 'laws'" in message and "do not use it" in message and "\n" not in message
    res = CliRunner().invoke(main, ["query", "--model", str(bad), "P(digit=3)"])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "'laws'" in res.output


def test_an_untouched_copy_with_the_laws_removed_loads_as_before_laws(trained, tmp_path):
    """A checkpoint without ``laws`` (every file written before them) loads, with the story's laws."""
    out, _ = trained
    old = _rewrite_meta(out, tmp_path / "old.safetensors", lambda m: m.pop("laws"))
    ckpt = load_checkpoint(old)
    assert ckpt.laws is None
    with pytest.raises(StoryError, match="learned from data"):  # the story gives no numbers for intensity
        load_model(old).scm(False)


def test_the_registered_morphomnist_story_is_unaffected():
    """Stated exactly: nothing to learn, the shipped checkpoint has no laws and the story's are used."""
    from cvaeq.loading import shipped_checkpoint

    story = load_story("morphomnist")
    assert story.learned == {}
    path = shipped_checkpoint(story)
    assert path is not None
    ckpt = load_checkpoint(path)
    assert ckpt.laws is None and "laws" not in ckpt.meta
    r = infer(load_model(path).scm(False), ["intensity"], {"thickness": 4.0},
              {"thickness": 2.0, "intensity": 150.0}, 5, seed=0)
    y = (150 - 64) / 191
    deepscm = 64 + 191 / (1 + math.exp(-(math.log(y / (1 - y)) + 2 * (4 - 2))))
    assert r.samples["intensity"].tolist() == pytest.approx([deepscm] * 5, rel=1e-12)


def test_labels_the_stated_form_cannot_give_are_a_one_line_error(tmp_path):
    """A frame 64 .. 164 under a sigmoid cannot give the labels above 164: the fit says so, nothing is written."""
    (tmp_path / "narrow.toml").write_text(STORY.replace("gain = 191", "gain = 100"))
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["train", "--story", str(tmp_path / "narrow.toml"), "--n", "64", "--epochs", "1",
                                    "--batch", "32", "--eval-n", "32", "--threads", "1", "--quiet", "--out", str(out)])
    assert res.exit_code == 2, res.output
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: story 'morpho_learned': fitting the law of 'intensity': the labels run from ")
    assert line.endswith("widen offset and gain, or leave them out") and "Traceback" not in res.output
    assert not out.exists()


def test_a_resumed_run_keeps_the_fitted_laws(trained, tmp_path):
    """Resuming trains on the same rows: the laws are the checkpoint's, not fitted again."""
    import shutil

    from cvaeq.model.train import TrainConfig, train

    out, _ = trained
    copy = tmp_path / "resumed.safetensors"
    shutil.copy(out, copy)
    said = []
    train(TrainConfig(epochs=2, device="cpu"), copy, resume=copy, progress=False, log=said.append, threads=1)
    ckpt = load_checkpoint(copy)
    assert ckpt.epoch == 2 and ckpt.laws == load_checkpoint(out).laws
    assert not any(line.startswith("fitted law") for line in said)
