"""A family that gives only the image-model protocol's required members works
everywhere (cvaeq.image_model): the seed's MLP, stripped to ``latent_dim``,
``factor_logits``, ``z_posterior`` and one decoder, answers an image query,
is evaluated, and draws the explorer's decoder view."""

import json

import numpy as np
import pytest
import torch

from cvaeq.image_model import ImageModelAdapter, SplitEncoder, missing_members
from cvaeq.loading import LoadedModel
from cvaeq.story import load_story
from cvaeq.world import get_world
from cvaeq_seedmlp import SeedMLPFamily

IMAGE = "shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6"


class RequiredOnly:
    """The seed MLP with nothing but the required members: ``decoder`` names
    the one decoder it keeps (``pixel_logits`` or ``decode_probs``)."""

    def __init__(self, inner, decoder):
        self.latent_dim = inner.latent_dim
        self.factor_logits = inner.factor_logits
        self.z_posterior = inner.z_posterior
        setattr(self, decoder, getattr(inner, decoder))


@pytest.fixture(scope="module", params=["pixel_logits", "decode_probs"])
def model(request):
    torch.manual_seed(0)
    inner = SeedMLPFamily().build(get_world("dsprites"), 6, {"hidden": 16}).eval().requires_grad_(False)
    return RequiredOnly(inner, request.param)


def test_it_has_the_required_members_and_nothing_else(model):
    assert missing_members(model) is None and not isinstance(model, SplitEncoder)
    adapter = ImageModelAdapter(model, (64, 64))
    assert adapter.decoder == ("logits" if hasattr(model, "pixel_logits") else "probs") and not adapter.split


def test_it_answers_an_image_query(model):
    from cvaeq.query.answer import ask

    story = load_story("default")
    a = ask("P(X | do(shape=square), X=img)", image=IMAGE, model=model, story=story, samples=8, seed=0)
    b = ask("P(X | do(shape=square), X=img)", image=IMAGE, model=model, story=story, samples=8, seed=0)
    assert a.kind == "counterfactual" and a.sample_images.shape[1:] == (64, 64)
    assert a.to_json() == b.to_json()  # the same seed, the same answer
    f = ask("P(shape | X=img)", image=IMAGE, model=model, story=story, samples=8, seed=0)
    dist = json.loads(f.to_json())["distribution"]["shape"]
    assert set(dist) <= {"square", "ellipse", "heart"} and abs(sum(dist.values()) - 1) < 1e-6


def test_it_is_evaluated(model):
    from cvaeq.evaluation import evaluate

    r = evaluate(
        LoadedModel(load_story("default"), None, model),
        n=2,
        samples=4,
        tv_particles=200,
        truth_particles=16,
        progress=False,
        threads=1,
    )
    assert set(r["factor_accuracy"]) == {"shape", "scale", "orientation", "posX", "posY"}
    assert 0 <= r["counterfactual"]["iou_mean"] <= 1 and 0 <= r["recon_iou"] <= 1
    assert r["nll_nats"] is None or np.isfinite(r["nll_nats"])


def test_it_draws_the_explorers_decoder_view(model):
    from cvaeq.serve.explorer import Explorer

    ex = Explorer(model=model, story="default")
    probs = ex.decode(
        {"shape": "heart", "scale": "1", "orientation": "0", "posX": "0.5", "posY": "0.5"}, [0.0] * model.latent_dim
    )
    assert probs.shape == (64, 64) and bool(((probs >= 0) & (probs <= 1)).all())
    adapter = ImageModelAdapter(model, (64, 64))
    classes = torch.tensor(
        [
            [
                ex.factor_classes({"shape": "heart", "scale": "1", "orientation": "0", "posX": "0.5", "posY": "0.5"})[f]
                for f in ex.world.names
            ]
        ]
    )
    want = adapter.pixel_probs(classes, torch.zeros(1, model.latent_dim))[0].double().numpy()
    assert np.array_equal(probs, want)


def test_two_models_alternated_answer_as_each_alone(model):
    """Nothing is kept between questions: two models (the fixture's and another
    seed's) asked about in turns give each its own answer."""
    from cvaeq.query.answer import ask

    torch.manual_seed(1)
    other = RequiredOnly(
        SeedMLPFamily().build(get_world("dsprites"), 6, {"hidden": 16}).eval().requires_grad_(False),
        "pixel_logits" if hasattr(model, "pixel_logits") else "decode_probs",
    )
    story = load_story("default")

    def answer(m):
        return ask("P(X | do(shape=square), X=img)", image=IMAGE, model=m, story=story, samples=8, seed=3)

    alone = {id(m): answer(m) for m in (model, other)}
    assert not np.array_equal(alone[id(model)].mean_image, alone[id(other)].mean_image)
    for m in (other, model, model, other, model):
        again = answer(m)
        assert again.to_json() == alone[id(m)].to_json()
        assert np.array_equal(again.mean_image, alone[id(m)].mean_image)
