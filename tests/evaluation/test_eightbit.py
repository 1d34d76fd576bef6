"""``cvaeq eval`` of an 8-bit world: its own figures (L1, PSNR, bits/dim), and exact composition through the engine."""

import math

import numpy as np
import pytest
import torch

from cvaeq.evaluation import evaluate
from cvaeq.evaluation.eightbit import l1, psnr
from cvaeq.loading import Mechanisms
from cvaeq.model.causal_vae import CausalVAEFamily
from cvaeq.story import load_story

TINY = {"patch_channels": 4, "merge_channels": 4, "hidden": 16, "dec_channels": 4, "cell_hidden": 8, "dec_hidden": 16}
STORY = load_story("colour_pendulum")


@pytest.fixture(scope="module")
def scores():
    torch.manual_seed(0)
    model = CausalVAEFamily().build(STORY.world, STORY.latent_dim, TINY).eval()  # untrained: composition is exact anyway
    tables = {f: torch.log(torch.as_tensor(STORY.table(f))) for f in STORY.factors}
    return evaluate(Mechanisms(STORY, tables, model), n=3, samples=6, tv_particles=200, truth_particles=16,
                    progress=False, threads=1)


def test_an_8bit_world_reports_l1_psnr_and_bits_per_dim_not_iou(scores):
    assert scores["pixel"] == "8bit" and scores["world"] == "colour_pendulum"
    assert "recon_iou" not in scores and "iou" not in scores["counterfactual"]
    names = STORY.world.names
    cf = scores["counterfactual"]
    for key in ("l1", "psnr", "l1_story", "psnr_story", "effectiveness"):
        assert list(cf[key]) == list(names)
    assert all(0 <= v <= 1 for v in cf["l1"].values()) and all(0 < v <= 100 for v in cf["psnr"].values())
    assert cf["l1_mean"] == pytest.approx(np.mean(list(cf["l1"].values())))
    # the shadow's factors cause nothing: the story's own answer is the truth, exactly
    for f in ("shadow_length", "shadow_position"):
        assert cf["l1_story"][f] == 0 and cf["psnr_story"][f] == 100
    dims = 3 * 64 * 64
    for key, nats in (("nll", "nll_nats"), ("elbo", "elbo_nats"), ("nll_given_factors", "nll_given_factors_nats")):
        assert scores["bits_per_dim"][key] == pytest.approx(scores[nats] / (dims * math.log(2)))


def test_composition_through_the_engine_gives_the_evidence_back_byte_for_byte(scores):
    # even an untrained decoder: each pixel's noise is abducted within its level's bin
    assert scores["counterfactual"]["composition"] == {"1": 0.0, "10": 0.0}
    dec = scores["counterfactual"]["composition_decoder_l1"]
    assert set(dec) == {"1", "10"} and dec["1"] > 0  # the decoder alone does not: it is untrained


def test_l1_and_psnr_are_per_pixel_and_channel_on_the_unit_scale():
    a = np.zeros((2, 3, 4, 4))
    b = a.copy()
    b[0, 0, 0, 0] = 1.0  # one channel of one pixel fully off: 1/48 of the picture
    assert l1(a, b).tolist() == [1 / 48, 0.0]
    assert psnr(a, b)[0] == pytest.approx(10 * math.log10(48)) and psnr(a, b)[1] == 100.0


def test_the_table_of_an_8bit_world_shows_its_own_figures(scores):
    from cvaeq.cli.eval import summary

    text = summary(scores)
    assert "bits/dim" in text and "cf PSNR (dB)" in text and "IoU" not in text
    # exactly 0 on every picture: its interval is [0, 0] (the percentile bootstrap never leaves a constant)
    assert "composition (bytes that differ) 1: 0.0000 [0.0000, 0.0000]  10: 0.0000 [0.0000, 0.0000]" in text
    assert "95% percentile bootstrap intervals: 1000 resamples of the n = 3 test pictures" in text
