"""The causal VAE on 8-bit pictures: the discretised-logistic decoder, its training, checkpoints and families."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cvaeq import levels as lv
from cvaeq.cli import main
from cvaeq.errors import CheckpointError, CvaeqError
from cvaeq.model.causal_vae import CausalVAEFamily
from cvaeq.model.checkpoint import load_checkpoint, save_checkpoint
from cvaeq.model.cvae import level_log_prob
from cvaeq.model.family import check_pixel_kind, get_family
from cvaeq.model.validation import validation_scores
from cvaeq.story import load_story

from .conftest import TINY
from .test_checkpoint import _rewrite_meta

STORY = load_story("colour_pendulum")
WORLD = STORY.world


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return CausalVAEFamily().build(WORLD, STORY.latent_dim, TINY)


def data(n, seed=0):
    classes = STORY.sample(n, np.random.default_rng(seed))
    return WORLD.render_checked(classes), classes


def test_the_decoder_gives_a_loc_and_a_clamped_log_scale_per_pixel_and_channel():
    model = tiny_model()
    assert model.pixel == "8bit" and model.channels == 3
    classes = torch.as_tensor(data(5)[1])
    with torch.no_grad():
        loc, log_scale = model.pixel_levels(classes, torch.randn(5, STORY.latent_dim) * 50)
    assert loc.shape == log_scale.shape == (5, 3, 64, 64)
    assert torch.isfinite(loc).all() and log_scale.min() >= -8.0 and log_scale.max() <= 0.0
    with pytest.raises(CvaeqError, match="8bit pictures: use pixel_levels"):
        model.pixel_logits(classes, torch.zeros(5, STORY.latent_dim))
    # the binary causal VAE is untouched: it has Bernoulli logits and no levels
    binary = CausalVAEFamily().build(load_story("pendulum").world, 2, TINY)
    assert binary.pixel == "binary" and binary.pixel_logits(classes, torch.zeros(5, 2)).shape == (5, 64, 64)
    with pytest.raises(CvaeqError, match="binary pictures: use pixel_logits"):
        binary.pixel_levels(classes, torch.zeros(5, 2))


def test_the_decoder_order_is_a_permutation_of_the_pictures_and_levels_move_back_as_floats_do():
    """The causal VAE's LevelBlocks: level_blocks is pixel_levels in the decoder's order, the two
    orders are inverse permutations, and levels (uint8, moved 8 bytes at a time) come back exactly
    as a float picture does."""
    model = tiny_model()
    classes = torch.as_tensor(data(4)[1])
    z = torch.randn(4, STORY.latent_dim)
    with torch.no_grad():
        in_blocks, in_pixels = model.level_blocks(classes, z), model.pixel_levels(classes, z)
    assert all(torch.equal(model.from_level_blocks(b), p) for b, p in zip(in_blocks, in_pixels))
    pictures = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    blocks = model.to_level_blocks(pictures)
    assert blocks.shape == (4, 64, 192) and torch.equal(model.from_level_blocks(blocks), pictures)
    assert torch.equal(model.from_level_blocks(blocks.float()).to(torch.uint8), pictures)


def test_the_training_likelihood_is_levels_log_prob_with_gradients_at_the_end_bins():
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, 256, (4000,), generator=g)
    levels[:500], levels[500:1000] = 0, 255  # the end bins, whose edges are infinite in cvaeq.levels
    loc = (torch.rand(4000, generator=g) * 1.4 - 0.2).requires_grad_()
    log_scale = (torch.rand(4000, generator=g) * 8 - 8).requires_grad_()
    ours = level_log_prob(levels, loc, log_scale)
    assert torch.equal(ours, lv.log_prob(levels, loc, log_scale))
    ours.sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(log_scale.grad).all()


def test_training_steps_lower_the_8bit_likelihood_and_keep_it_finite():
    model = tiny_model()
    imgs, classes = data(32)
    x, y = torch.from_numpy(imgs).float() / 255, torch.from_numpy(classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, parts = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else parts["elbo_nats"]
    assert np.isfinite(parts["elbo_nats"]) and parts["elbo_nats"] < 0.7 * first
    # the model's X site scores the levels: -ELBO >= -log p(x | f) at the decoder's own loc and scale
    with torch.no_grad():
        loc, log_scale = model.pixel_levels(y, model.z_posterior(x, y)[0])
        nats = -lv.log_prob(torch.from_numpy(imgs), loc, log_scale).flatten(1).sum(-1).mean()
    assert float(nats) == pytest.approx(parts["elbo_nats"], rel=0.05)


def test_held_out_scores_of_an_8bit_world_are_bits_per_dim_and_l1():
    model = tiny_model()
    imgs, classes = data(6)
    ev = validation_scores(model, imgs, classes, torch.device("cpu"), world=WORLD)
    assert "recon_iou" not in ev and 0 < ev["recon_l1"] < 1
    assert ev["bits_per_dim"] == pytest.approx(ev["elbo_nats"] / (3 * 64 * 64 * np.log(2)))


def test_checkpoints_record_the_pixel_kind_and_channels(tmp_path):
    model = tiny_model()
    tables = {f: np.log(STORY.table(f)) for f in STORY.factors}
    path = save_checkpoint(tmp_path / "c.safetensors", model, STORY, tables, train_config={"n": 1}, epoch=1)
    ckpt = load_checkpoint(path)
    assert (ckpt.pixel, ckpt.channels, ckpt.meta["pixel"], ckpt.meta["channels"]) == ("8bit", 3, "8bit", 3)
    classes = torch.as_tensor(data(2)[1])
    with torch.no_grad():
        for a, b in zip(ckpt.model.pixel_levels(classes, torch.ones(2, 2)), model.pixel_levels(classes, torch.ones(2, 2))):
            assert torch.equal(a, b)
    # a file that says binary for this 8-bit world is inconsistent
    _rewrite_meta(path, lambda m: m.update(pixel="binary", channels=1))
    with pytest.raises(CheckpointError, match="records binary pictures of 1 channel.*'colour_pendulum' has 8bit"):
        load_checkpoint(path)
    _rewrite_meta(path, lambda m: m.update(pixel="16bit"))
    with pytest.raises(CheckpointError, match="'pixel' is not a pixel kind"):
        load_checkpoint(path)


def test_old_checkpoints_load_as_binary_one_channel():
    from cvaeq.loading import WEIGHTS

    ckpt = load_checkpoint(WEIGHTS / "pendulum.safetensors")
    assert "pixel" not in ckpt.meta and (ckpt.pixel, ckpt.channels) == ("binary", 1)
    assert ckpt.model.pixel == "binary"


def test_a_family_that_declares_no_pixel_kinds_decodes_binary_only(tmp_path, toy_plugin):
    family = get_family("test_mlp")  # a plugin's family written before 8-bit pictures: no pixel_kinds
    with pytest.raises(CvaeqError, match="'test_mlp' decodes binary pictures.*'colour_pendulum' has 8bit"):
        check_pixel_kind(family, "test_mlp", WORLD)
    check_pixel_kind(family, "test_mlp", load_story("pendulum").world)  # binary: fine
    assert CausalVAEFamily.pixel_kinds == ("binary", "8bit")
    result = CliRunner().invoke(main, ["train", "--story", "colour_pendulum", "--family", "test_mlp", "--n", "256",
                                       "--epochs", "1", "--out", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 2 and "decodes binary pictures" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "m.safetensors").exists()
