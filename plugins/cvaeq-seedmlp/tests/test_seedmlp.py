"""The seed_mlp family: builds on any world, trains, meets the engine's protocol, registers."""

import doctest

import numpy as np
import pytest
import torch

import cvaeq_seedmlp
import cvaeq_seedmlp.family
import cvaeq_seedmlp.model
from cvaeq.errors import CvaeqError
from cvaeq.mechanisms.image import ImageModel, bernoulli_image
from cvaeq.model.family import get_family
from cvaeq.plugins import get_image_model_plugins, get_image_models
from cvaeq.world import Factor, World, get_world
from cvaeq_seedmlp import SeedMLPFamily


def _bars(classes):
    """A vertical bar of width ``1 + width class`` at column ``x``, on a 6x8 image."""
    out = np.zeros((len(classes), 6, 8), np.uint8)
    for i, (w, x) in enumerate(classes):
        out[i, :, x : x + w + 1] = 1
    return out


#: A tiny world that is not dSprites: two factors, 6x8 images.
BARS = World(
    "bars",
    (Factor("width", values=[1.0, 2.0]), Factor("x", values=[0.0, 1.0, 2.0, 3.0, 4.0])),
    image_shape=(6, 8),
    render=_bars,
)


def _all_classes(world):
    return world.classes_array_of(np.arange(world.n_images))


@pytest.mark.parametrize("module", [cvaeq_seedmlp, cvaeq_seedmlp.family, cvaeq_seedmlp.model], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_registered_under_its_plugin(registered):
    assert isinstance(get_image_models()["seed_mlp"], SeedMLPFamily)
    assert get_image_model_plugins()["seed_mlp"] == "cvaeq-seedmlp"
    assert isinstance(get_family("seed_mlp"), SeedMLPFamily)


def test_dsprites_build_is_the_seed_architecture():
    """Default widths are the seed's (benchmarks/seed_vs_ours.py), less its constant colour input."""
    world = get_world("dsprites")
    m = SeedMLPFamily().build(world, 6, {"z_dim": 50})
    pixels, onehots = 64 * 64, sum(world.sizes.values())
    assert onehots == 113

    def widths(seq):
        return [(layer.in_features, layer.out_features) for layer in seq if isinstance(layer, torch.nn.Linear)]

    assert widths(m.enc) == [(pixels + onehots, 1000), (1000, 1000), (1000, 100)]
    assert widths(m.dec) == [(50 + onehots, 1000), (1000, 1000), (1000, 1000), (1000, pixels)]
    assert widths(m.classifier) == [(pixels, 1000), (1000, onehots)]
    assert sum(isinstance(layer, torch.nn.Softplus) for layer in m.dec) == 3


def test_z_dim_defaults_to_the_story_latent_dim():
    m = SeedMLPFamily().build(BARS, 3, {"hidden": 8})
    assert m.latent_dim == 3
    assert SeedMLPFamily().build(BARS, 3, {"hidden": 8, "z_dim": 5}).latent_dim == 5


@pytest.mark.parametrize("world", [BARS, get_world("dsprites")], ids=lambda w: w.name)
def test_meets_the_engine_protocol(world):
    torch.manual_seed(0)
    m = SeedMLPFamily().build(world, 4, {"hidden": 16}).eval()
    classes = torch.from_numpy(_all_classes(world)[:5])
    x = torch.from_numpy(world.render(classes.numpy())).float()
    s, (h, w) = len(classes), world.image_shape
    assert isinstance(m, ImageModel)
    z = torch.randn(s, 4)
    assert m.pixel_logits(classes, z).shape == (s, h, w)
    probs = m.decode_probs(classes, z)
    assert probs.shape == (s, h, w) and bool(((probs > 0) & (probs < 1)).all())
    logits = m.factor_logits(x)
    assert list(logits) == list(world.names)
    assert {f: tuple(v.shape) for f, v in logits.items()} == {f: (s, world.sizes[f]) for f in world.names}
    loc, scale = m.z_posterior(x, classes)
    assert loc.shape == scale.shape == (s, 4) and bool((scale > 0).all())
    # the engine's mechanism takes it as it is
    mech = bernoulli_image(m, factors=world.names, shape=world.image_shape)
    parents = {f: classes[:, i] for i, f in enumerate(world.names)} | {"Z": z}
    assert mech.log_prob(x, parents).shape == (s,)


def test_loss_parts_and_training_lowers_it():
    torch.manual_seed(0)
    m = SeedMLPFamily().build(BARS, 2, {"hidden": 32, "aux_weight": 1.0})
    classes = torch.from_numpy(_all_classes(BARS))
    x = torch.from_numpy(BARS.render(classes.numpy())).float()
    loss, parts = m.loss(x, classes)
    assert set(parts) == {"elbo_nats", "aux_nll"}
    assert loss.item() == pytest.approx(parts["elbo_nats"] + 1.0 * parts["aux_nll"], rel=1e-5)
    assert m(x, classes).shape == ()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss, parts = m.loss(x, classes)
        first = first if first is not None else parts
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["elbo_nats"] < 0.5 * first["elbo_nats"]
    assert parts["aux_nll"] < 0.5 * first["aux_nll"]
    pred = m.last_predictions()
    assert set(pred) == {"width", "x"}


def test_arch_of_rebuilds_the_same_model():
    fam = SeedMLPFamily()
    torch.manual_seed(0)
    m = fam.build(BARS, 3, {"hidden": 12, "z_dim": 7, "aux_weight": 2.5})
    arch = fam.arch_of(m)
    assert arch == {"hidden": 12, "z_dim": 7, "aux_weight": 2.5}
    import json

    again = fam.build(BARS, 3, json.loads(json.dumps(arch)))  # a checkpoint stores it as JSON
    assert again.aux_weight == 2.5 and fam.arch_of(again) == arch
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    again.load_state_dict(m.state_dict())
    classes, z = torch.tensor([[1, 3]]), torch.randn(1, 7)
    assert torch.equal(again.pixel_logits(classes, z), m.pixel_logits(classes, z))


@pytest.mark.parametrize(
    "arch, words",
    [
        ({"width": 3}, "unknown key 'width'"),
        ({"hidden": 0}, "hidden must be an integer >= 1"),
        ({"hidden": 2.5}, "hidden must be an integer >= 1"),
        ({"z_dim": True}, "z_dim must be an integer >= 1"),
        ({"aux_weight": -1}, "aux_weight must be a number >= 0"),
        ({"aux_weight": "lots"}, "aux_weight must be a number >= 0"),
        ({"aux_weight": float("nan")}, "aux_weight must be a number >= 0"),
    ],
)
def test_bad_arch_is_one_line(arch, words):
    with pytest.raises(CvaeqError, match=words) as e:
        SeedMLPFamily().build(BARS, 2, arch)
    assert "\n" not in str(e.value)


def test_arch_values_may_be_text():
    """As a command line gives them (``--arch hidden=8,aux_weight=0.5``)."""
    m = SeedMLPFamily().build(BARS, 2, {"hidden": "8", "aux_weight": "0.5"})
    assert (m.hidden, m.aux_weight) == (8, 0.5)


def test_the_seed_mlp_decodes_binary_pictures_only():
    from cvaeq.errors import CvaeqError
    from cvaeq.model.family import check_pixel_kind
    from cvaeq.world import get_world
    from cvaeq_seedmlp.family import SeedMLPFamily

    with pytest.raises(CvaeqError, match="'seed_mlp' decodes binary pictures"):
        check_pixel_kind(SeedMLPFamily(), "seed_mlp", get_world("colour_pendulum"))
