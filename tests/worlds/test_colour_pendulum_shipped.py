"""The shipped colour pendulum model: what `--story colour_pendulum` gets, and its answers in colour."""

import json

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from cvaeq import levels
from cvaeq.cli import main
from cvaeq.engine import abduct_groups, predict_groups
from cvaeq.evaluation.eightbit import l1, to_unit
from cvaeq.evaluation.truth import true_counterfactual
from cvaeq.image_model import ImageModelAdapter
from cvaeq.loading import WEIGHTS, load_model, shipped_checkpoint
from cvaeq.model.checkpoint import load_checkpoint
from cvaeq.query.answer import ask
from cvaeq.scm import build_scm
from cvaeq.story import load_story

STORY = load_story("colour_pendulum")
WORLD = STORY.world
FACTUAL = "angle=-18,light=13.25,shadow_length=3,shadow_position=6.4"
ROW = WORLD.row(WORLD.parse_factors(FACTUAL.split(",")))


def test_the_colour_story_gets_its_shipped_8bit_model():
    path = WEIGHTS / "colour_pendulum.safetensors"
    assert shipped_checkpoint(STORY) == path and path.stat().st_size <= 20 * 1024**2
    ckpt = load_checkpoint(path)
    assert (ckpt.pixel, ckpt.channels, ckpt.model.pixel, ckpt.story.name) == ("8bit", 3, "8bit", "colour_pendulum")
    # the binary pendulum keeps its own model
    assert shipped_checkpoint(load_story("pendulum")) == WEIGHTS / "pendulum.safetensors"


def test_moving_the_light_left_in_colour_against_the_rendered_truth():
    a = ask("P(X | do(light=2), X=img)", story="colour_pendulum", image=FACTUAL, samples=60, seed=0)
    assert a.model.endswith("colour_pendulum.safetensors") and a.pixel == "8bit"
    truth = true_counterfactual(STORY, ROW, "light", np.array([WORLD.snap("light", 2.0)]), num_particles=256, seed=0)
    mean = np.asarray(a.mean_image, dtype=np.float64)[None]
    assert mean.shape == (1, 3, 64, 64)
    assert l1(mean, to_unit(truth.mean_image))[0] < 0.01
    assert l1(to_unit(a.evidence_image[None]), to_unit(truth.mean_image))[0] > 0.03  # the picture did change
    assert a.predicted["light"] == WORLD.label("light", WORLD.snap("light", 2.0))


def test_the_command_line_writes_colour_pngs(tmp_path):
    result = CliRunner().invoke(main, ["query", "P(X | do(light=2), X=img)", "--story", "colour_pendulum",
                                       "--image", FACTUAL, "--samples", "20", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)["images"]
    with Image.open(paths["evidence"]) as im:
        assert im.mode == "RGB" and im.size == (64, 64)
        assert np.array_equal(np.asarray(im).transpose(2, 0, 1), WORLD.render_checked(ROW)[0])


def test_the_readme_question_keeps_most_of_its_particles_and_the_null_intervention_stays_exact():
    """The latent proposal refined for the picture (cvaeq.mechanisms.latent_refinement): the README's
    question keeps an ESS of 90.9 of 100 at seed 0 on the development machine (q(Z | X, factors)
    alone keeps 1.6); 80 leaves room for float32 arithmetic that differs in the last bits on other
    CPUs. The weights divide by the refined proposal's density, and the pixel noise is still
    abducted exactly: the null intervention returns the evidence byte for byte."""
    a = ask("P(X | do(light=2), X=img)", story="colour_pendulum", image=FACTUAL, samples=100, seed=0)
    assert a.ess > 80
    null = ask("P(X | X=img)", story="colour_pendulum", image=FACTUAL, samples=100, seed=0)
    assert null.ess > 80
    evidence = WORLD.render_checked(ROW)[0]
    assert np.array_equal(np.asarray(null.sample_images), np.broadcast_to(evidence, null.sample_images.shape))


#: Shadows the picture's side cuts, each with an intervention that moves it to another cut shadow
#: whose visible part differs by a pixel or two at one edge: (factual classes, factor, new class).
#: Found by benchmarks/colour_effectiveness.py as the worst-read of eval's test pictures.
CUT_SHADOWS = [
    ((9, 5, 3, 2), "shadow_position", 1), ((2, 12, 5, 3), "shadow_position", 8),
    ((6, 7, 2, 6), "shadow_position", 7), ((15, 18, 3, 0), "shadow_position", 1),
    ((3, 10, 5, 2), "shadow_position", 8), ((0, 10, 1, 6), "shadow_length", 5),
    ((0, 8, 0, 0), "shadow_length", 6), ((6, 7, 2, 6), "shadow_length", 6),
    ((2, 16, 3, 7), "shadow_length", 6), ((12, 0, 1, 0), "shadow_length", 5),
]  # fmt: skip


def test_counterfactual_cut_shadows_are_read_as_the_intervened_shadow():
    """Effectiveness where it was lost (docs/weights.md): the shipped model's sampled counterfactuals
    of ten cut shadows, read by its own q(factor | X), show the intervened shadow. At seed 0 on the
    development machine: 0.876 of the weight under do(shadow_length), 0.936 under do(shadow_position);
    the networks before their counterfactual training scored 0.348 and 0.558, so 0.75 catches
    such a model and leaves room for another CPU's rounding of 50 particles."""
    mech = load_model(None, story="colour_pendulum", image=True)
    reader = ImageModelAdapter(mech.image_model, WORLD.image_shape)
    scm = build_scm(mech.story, mech.factor_logits, image_model=mech.image_model)
    classes = np.array([case[0] for case in CUT_SHADOWS])
    torch.manual_seed(0)
    with torch.no_grad():
        particles = abduct_groups(scm, {"X": torch.from_numpy(WORLD.render_checked(classes))}, 50)
        weights = particles.weights.numpy()
        for factor in ("shadow_length", "shadow_position"):
            rows = [i for i, case in enumerate(CUT_SHADOWS) if case[1] == factor]
            values = classes[:, WORLD.index(factor)].copy()
            values[rows] = [CUT_SHADOWS[i][2] for i in rows]
            out = predict_groups(particles, {factor: torch.from_numpy(values)})
            pictures = out["X"].reshape(-1, *out["X"].shape[2:])
            read = reader.factor_logits(levels.to_unit(pictures))[factor].argmax(-1).numpy().reshape(len(classes), -1)
            share = (weights * (read == values[:, None])).sum(1)[rows].mean()
            assert share > 0.75, (factor, share)
