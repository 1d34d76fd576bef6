"""The image-model seam (cvaeq.image_model): the protocol's required and optional
members, the one adapter's decoder choice, and encodings that remember nothing
between calls."""

import numpy as np
import pytest
import torch

from cvaeq.errors import MechanismError
from cvaeq.image_model import (ImageModel, ImageModelAdapter, PixelLogits, PixelProbs, SplitEncoder,
                               missing_members)
from cvaeq.loading import load_model, shipped_checkpoint
from cvaeq.query.answer import ask

needs_shipped = pytest.mark.skipif(shipped_checkpoint() is None, reason="the shipped checkpoint is not installed")


class Probs:
    """The required members only, the decoder as probabilities; counts its calls."""

    latent_dim = 1

    def __init__(self):
        self.calls = []

    def decode_probs(self, classes, z):
        self.calls.append("decode_probs")
        return torch.sigmoid(classes.float().sum(1) + z[:, 0]).reshape(-1, 1, 1).expand(-1, 2, 2).clone()

    def factor_logits(self, x):
        self.calls.append(("factor_logits", len(x)))
        return {"a": x.reshape(len(x), -1)[:, :2] * 3.0}

    def z_posterior(self, x, classes):
        self.calls.append(("z_posterior", len(x)))
        return x.reshape(len(x), -1)[:, :1] + classes[:, :1].float(), torch.ones(len(x), 1)


class Logits(Probs):
    def pixel_logits(self, classes, z):
        self.calls.append("pixel_logits")
        return (classes.float().sum(1) + z[:, 0]).reshape(-1, 1, 1).expand(-1, 2, 2).clone()


def test_the_protocol_is_declared_in_code():
    """Required: ImageModel and one decoder; optional: the split encoder."""
    assert isinstance(Probs(), ImageModel) and isinstance(Probs(), PixelProbs)
    assert not isinstance(Probs(), PixelLogits) and not isinstance(Probs(), SplitEncoder)
    assert isinstance(Logits(), PixelLogits)
    if shipped_checkpoint() is not None:
        net = load_model().image_model
        assert isinstance(net, ImageModel) and isinstance(net, PixelLogits) and isinstance(net, SplitEncoder)
    assert missing_members(Probs()) is None
    bare = type("Bare", (), {"latent_dim": 1, "factor_logits": Probs.factor_logits,
                             "z_posterior": Probs.z_posterior})()
    assert missing_members(bare) == "pixel_logits() or decode_probs()"
    with pytest.raises(MechanismError, match=r"has no pixel_logits\(\) or decode_probs\(\)"):
        ImageModelAdapter(bare, (2, 2))


def test_the_adapter_decides_the_decoder_once_logits_first():
    classes, z = torch.tensor([[1], [0]]), torch.tensor([[0.5], [-2.0]])
    probs, logits = ImageModelAdapter(Probs(), (2, 2)), ImageModelAdapter(Logits(), (2, 2))
    assert (probs.decoder, logits.decoder) == ("probs", "logits")
    assert torch.equal(logits.pixel_probs(classes, z), torch.sigmoid(Logits().pixel_logits(classes, z)))
    assert torch.equal(probs.pixel_probs(classes, z), Probs().decode_probs(classes, z))
    # the mean image's pixels: a positive logit, exactly (no rounding of the sigmoid at one half)
    tiny = type("Tiny", (Logits,), {"pixel_logits": lambda self, c, z: torch.full((len(c), 2, 2), 1e-9)})()
    assert bool(ImageModelAdapter(tiny, (2, 2)).pixels_on(classes, z).all())
    inner = Logits()
    ImageModelAdapter(inner, (2, 2)).pixel_probs(classes, z)
    assert inner.calls == ["pixel_logits"]  # never both decoders


def test_an_adapter_keeps_no_decode_unless_built_to_repeat_the_last():
    classes, z = torch.tensor([[1], [0]]), torch.tensor([[0.5], [-2.0]])
    inner = Logits()
    plain = ImageModelAdapter(inner, (2, 2))
    plain.decode(classes, z), plain.decode(classes, z)
    assert inner.calls == ["pixel_logits"] * 2
    inner = Logits()
    once = ImageModelAdapter(inner, (2, 2), repeat_last_decode=True)
    first = once.decode(classes, z)
    assert torch.equal(once.pixel_probs(classes.clone(), z.clone()), torch.sigmoid(first))  # equal values: no decode
    assert inner.calls == ["pixel_logits"]
    z[0, 0] = 7.0  # the caller's tensor changed in place: compared by value, decoded again
    assert not torch.equal(once.decode(classes, z), first) and inner.calls == ["pixel_logits"] * 2


def test_an_encoding_is_a_value_handed_on_not_a_cache():
    """Two batches encoded and asked in any order answer as each alone."""
    m = ImageModelAdapter(Logits(), (2, 2))
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]).expand(4, 2, 2)
    b = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]).expand(4, 2, 2)
    c = torch.zeros(4, 1, dtype=torch.long)
    alone = {id(x): (m.encode(x).factor_logits()["a"], m.encode(x).z_posterior(c)[0]) for x in (a, b)}
    ea, eb = m.encode(a), m.encode(b)
    for enc, x in ((eb, b), (ea, a), (eb, b)):
        assert torch.equal(enc.factor_logits()["a"], alone[id(x)][0])
        assert torch.equal(enc.z_posterior(c)[0], alone[id(x)][1])
    b2 = b.clone()
    b2[2] = a[0]  # rows that differ in one image: read as they are
    assert m.encode(b2).distinct == 3
    assert torch.equal(m.encode(b2).factor_logits()["a"], Logits().factor_logits(b2)["a"])


@needs_shipped
def test_an_image_query_reads_its_evidence_once_for_both_encoders(monkeypatch):
    model = load_model().image_model
    calls = []
    real = type(model).features
    monkeypatch.setattr(type(model), "features", lambda self, x: calls.append(len(x)) or real(self, x))
    ask("P(X | do(shape=square), X=img)", image="shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6",
        seed=0, samples=20)
    assert calls == [1, 1]  # the evidence, once for q(factors | X) and q(Z | X, factors); the answer's mean image


@needs_shipped
def test_questions_about_two_images_alternated_answer_as_each_alone():
    """No remembered features or decodes: image A, B, A, B give A's and B's own answers."""
    q = "P(X | do(shape=square), X=img)"
    images = ["shape=heart,scale=1,orientation=0.8,posX=0.3,posY=0.6",
              "shape=ellipse,scale=0.5,orientation=0,posX=0.8,posY=0.1"]
    alone = [ask(q, image=img, seed=2, samples=20) for img in images]
    assert alone[0].to_json() != alone[1].to_json()
    for i in (1, 0, 1, 0):
        again = ask(q, image=images[i], seed=2, samples=20)
        assert again.to_json() == alone[i].to_json() and np.array_equal(again.mean_image, alone[i].mean_image)


@needs_shipped
def test_a_model_changed_between_two_questions_is_read_afresh():
    """The causal VAE keeps nothing of the last image: after an in-place weight
    change (a training step) the same question reads the image again."""
    from cvaeq.image_model import ImageModelAdapter as Adapter

    model = load_model().image_model
    x = torch.zeros(3, 64, 64)
    x[:, 20:30, 20:30] = 1.0
    x = x[:1].expand(3, 64, 64)
    m = Adapter(model, (64, 64))
    with torch.no_grad():
        before = m.encode(x).factor_logits()["shape"].clone()
        saved = model.factor_head[2].bias.clone()
        try:
            model.factor_head[2].bias.add_(1.0)
            after = m.encode(x).factor_logits()["shape"]
        finally:
            model.factor_head[2].bias.copy_(saved)
    assert torch.allclose(after, before + 1.0)


def test_only_the_seam_asks_a_model_which_members_it_has():
    """The decoder path and the encoders' split are decided in cvaeq/image_model.py
    alone (and a plugin's members checked in mechanisms/checked.py): no other
    module of the package looks up a member of the protocol by name or reads
    torch's private version counters."""
    import re
    from pathlib import Path

    import cvaeq

    root = Path(cvaeq.__file__).parent
    seam = {root / "image_model.py", root / "mechanisms" / "checked.py"}
    member = re.compile(r"""["'](pixel_logits|decode_probs|features|factor_logits_of|z_posterior_of|z_params|"""
                        r"""factor_logits_flat)["']|\._version\b""")
    found = [f"{p.relative_to(root)}:{i}" for p in sorted(root.rglob("*.py")) if p not in seam
             for i, line in enumerate(p.read_text().splitlines(), 1) if member.search(line)]
    assert found == []
