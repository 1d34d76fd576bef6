"""Analytic image models for the evaluation tests.

:class:`AnalyticModel` is near perfect: its decoder is the renderer (pixels
clamped to [0.001, 0.999]), and its q(factors | X) reads an image by matching
it against the renders of every factor combination it has seen (the test
images, and every class combination it was asked to decode, under each of the
three shapes), peaked on the nearest. ``ignore`` makes a broken variant whose
decoder ignores one factor (draws it at class 0).
"""

import numpy as np
import pytest
import torch

from cvaeq.worlds.dsprites.factors import FACTORS, SIZES, indices_of
from cvaeq.worlds.dsprites.render import render


class AnalyticModel:
    latent_dim = 1

    def __init__(self, known, ignore=None, margin=12.0):
        self.ignore = ignore
        self.margin = margin
        self._index = {}
        self._classes = np.zeros((0, 5), dtype=np.int64)
        self._images = torch.zeros(0, 4096)
        self.learn(np.asarray(known))

    def learn(self, classes):
        classes = np.asarray(classes, dtype=np.int64).reshape(-1, 5)
        rows = [classes]
        for s in range(3):  # the reader knows every shape at each place it saw
            c = classes.copy()
            c[:, 0] = s
            rows.append(c)
        classes = np.unique(np.concatenate(rows), axis=0)
        new = classes[[int(i) not in self._index for i in indices_of(classes)]]
        if len(new):
            for i in indices_of(new):
                self._index[int(i)] = len(self._index)
            self._classes = np.concatenate([self._classes, new])
            self._images = torch.cat([self._images, torch.from_numpy(render(new)).float().reshape(len(new), -1)])

    def decode_probs(self, classes, z):
        classes = classes.numpy().copy()
        self.learn(classes)
        if self.ignore is not None:
            classes[:, FACTORS.index(self.ignore)] = 0
        return torch.from_numpy(render(classes)).float().clamp(0.001, 0.999)

    def factor_logits(self, x):
        flat = x.reshape(len(x), -1).float()
        # Hamming distance to every known render
        dist = flat.sum(1, keepdim=True) + self._images.sum(1) - 2 * flat @ self._images.T
        best = self._classes[dist.argmin(1).numpy()]
        out = {}
        for i, f in enumerate(FACTORS):
            logits = torch.full((len(x), SIZES[f]), -self.margin)
            logits[torch.arange(len(x)), torch.from_numpy(best[:, i])] = 0.0
            out[f] = logits
        return out

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


@pytest.fixture(scope="session")
def analytic_model():
    return AnalyticModel


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one torch thread avoids thread-pool overhead on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
