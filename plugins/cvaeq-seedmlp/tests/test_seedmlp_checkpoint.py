"""A seed_mlp model through cvaeq's checkpoints and query answering, as a user meets it."""

import numpy as np
import pytest
import torch

import cvaeq_seedmlp
from cvaeq.errors import CvaeqError
from cvaeq.model.checkpoint import load_checkpoint, save_checkpoint
from cvaeq.plugins import get_plugin_manager
from cvaeq.query.answer import ask
from cvaeq.story import load_story
from cvaeq_seedmlp import SeedMLP, SeedMLPFamily


@pytest.fixture(scope="module")
def tiny_checkpoint(registered, tmp_path_factory):
    """A small seed_mlp model trained for a few steps on 64 dSprites images of the default story
    (once for the module: both tests read the same file)."""
    story = load_story("default")
    world = story.world
    torch.manual_seed(0)
    model = SeedMLPFamily().build(world, story.latent_dim, {"hidden": 32, "z_dim": 3})
    rng = np.random.default_rng(0)
    classes = world.classes_array_of(rng.integers(0, world.n_images, 64))
    x, y = torch.from_numpy(world.render(classes)).float(), torch.from_numpy(classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(20):
        loss, _ = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tables = {f: np.log(story.table(f)) for f in world.names}
    path = save_checkpoint(
        tmp_path_factory.mktemp("seed") / "seed.safetensors", model, story, tables, train_config={"n": 64}, epoch=1
    )
    return path, model


def test_checkpoint_comes_back_as_the_same_seed_mlp_model(tiny_checkpoint):
    path, model = tiny_checkpoint
    ckpt = load_checkpoint(path)
    assert ckpt.family == "seed_mlp" and ckpt.meta["family"] == "seed_mlp"
    assert ckpt.meta["arch"] == {"hidden": 32, "z_dim": 3, "aux_weight": 10.0}
    assert isinstance(ckpt.model, SeedMLP) and not ckpt.model.training
    torch.manual_seed(1)
    classes, z = torch.tensor([[0, 2, 10, 5, 30], [2, 5, 39, 31, 0]]), torch.randn(2, 3)
    x = torch.from_numpy(ckpt.story.world.render(classes.numpy())).float()
    assert torch.equal(ckpt.model.pixel_logits(classes, z), model.pixel_logits(classes, z))
    for f, logits in model.factor_logits(x).items():
        assert torch.equal(ckpt.model.factor_logits(x)[f], logits)
    for a, b in zip(ckpt.model.z_posterior(x, classes), model.z_posterior(x, classes)):
        assert torch.equal(a, b)


def test_an_image_counterfactual_runs_and_is_deterministic(tiny_checkpoint):
    path, _ = tiny_checkpoint
    image = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"
    kw = dict(model=str(path), image=image, samples=20, seed=0)
    a = ask("P(X | do(shape=square), X=img)", **kw)
    b = ask("P(X | do(shape=square), X=img)", **kw)
    assert a.rung == "counterfactual" and a.samples == 20
    assert a.mean_image.shape == (64, 64) and a.sample_images.shape[1:] == (64, 64)
    assert np.array_equal(a.mean_image, b.mean_image) and np.array_equal(a.sample_images, b.sample_images)
    assert a.ess == b.ess
    other = ask("P(X | do(shape=square), X=img)", model=str(path), image=image, samples=20, seed=1)
    assert not np.array_equal(a.sample_images, other.sample_images)


def test_without_the_plugin_the_checkpoint_is_a_one_line_error_naming_the_family(tiny_checkpoint):
    path, _ = tiny_checkpoint
    pm = get_plugin_manager()
    pm.unregister(cvaeq_seedmlp)
    try:
        with pytest.raises(CvaeqError, match="seed_mlp") as e:
            load_checkpoint(path)
        assert "\n" not in str(e.value)
    finally:
        pm.register(cvaeq_seedmlp, name="cvaeq-seedmlp")
