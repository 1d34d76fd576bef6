"""DedupedImageModel: evaluation's wrapper reads each image once and decodes each particle set once."""

import torch

from cvaeq.evaluation.dedup import DedupedImageModel


class Counting:
    latent_dim = 2

    def __init__(self):
        self.decoded = 0

    def pixel_logits(self, classes, z):
        self.decoded += 1
        return (classes.sum(1, keepdim=True).float() + z.sum(1, keepdim=True)).reshape(-1, 1, 1).expand(-1, 4, 4) * 1.0

    def decode_probs(self, classes, z):
        return torch.sigmoid(self.pixel_logits(classes, z))

    def factor_logits(self, x):
        return {"a": x.reshape(len(x), -1)[:, :2]}

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 2), torch.ones(len(x), 2)


def test_the_same_particles_are_decoded_once_and_others_afresh():
    inner = Counting()
    m = DedupedImageModel(inner)
    classes, z = torch.tensor([[1, 2], [0, 3]]), torch.tensor([[0.5, 0.0], [1.0, -1.0]])
    logits = m.pixel_logits(classes, z)
    probs = m.decode_probs(classes.clone(), z.clone())  # equal values, other tensors: no second decoding
    assert inner.decoded == 1
    assert torch.equal(probs, torch.sigmoid(logits)) and torch.equal(probs, inner.decode_probs(classes, z))
    z2 = z.clone()
    z2[1, 0] = 2.0
    assert not torch.equal(m.pixel_logits(classes, z2), logits)
    z[0, 0] = 7.0  # the caller's tensor changed in place after the call: the kept copy is not fooled
    m.pixel_logits(classes, z)
    assert inner.decoded == 4


def test_a_model_whose_weights_changed_is_decoded_afresh():
    class Linear(torch.nn.Module):
        latent_dim = 2

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 16)

        def pixel_logits(self, classes, z):
            return self.lin(z).reshape(-1, 4, 4)

    inner = Linear()
    m = DedupedImageModel(inner)
    classes, z = torch.zeros(3, 1, dtype=torch.long), torch.randn(3, 2)
    with torch.no_grad():
        before = m.pixel_logits(classes, z)
        inner.lin.bias.add_(1.0)  # an optimizer step, in place
        after = m.pixel_logits(classes, z)
    assert torch.allclose(after, before + 1.0)
