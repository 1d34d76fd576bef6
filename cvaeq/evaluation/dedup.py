"""An image model whose encoders run once per run of identical images.

Batched abduction (:func:`cvaeq.engine.abduct_groups`) repeats each evidence
image for its ``K`` particles, and the image mechanism asks q(factors | X) of
every particle, and q(Z | X, factors) reads the image's features for every
particle; evaluation wraps the model so that each run of identical
consecutive images is read once and the answer repeated (``K`` times less
work; the same numbers up to float rounding, which can differ with the
batch size of a matrix product).

>>> import torch
>>> class Reader:
...     latent_dim = 1
...     calls = 0
...     def factor_logits(self, x):
...         Reader.calls += len(x)
...         return {"a": x.reshape(len(x), -1)[:, :2]}
>>> x = torch.tensor([[[0., 1.]], [[0., 1.]], [[1., 0.]]])
>>> DedupedImageModel(Reader()).factor_logits(x)["a"].tolist(), Reader.calls
([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], 2)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..model.networks import weights_version

__all__ = ["DedupedImageModel"]


class DedupedImageModel:
    """An image model whose ``factor_logits`` runs once per run of identical images.

    The proposal q(factors | X) is asked for every particle, and particles of
    one image repeat that image; this wrapper evaluates each consecutive run
    once and repeats the answer. Everything else is passed through.
    ``pixel_dtype`` sets the image mechanism's pixel precision
    (:class:`~cvaeq.mechanisms.image.BernoulliImage`'s ``dtype``).
    """

    def __init__(self, model, pixel_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.latent_dim = int(model.latent_dim)
        self._last: tuple | None = None  # ((images, (their version, weights)), (features, runs)) last read
        #: the precision of the image mechanism's pixel arithmetic (None: the model's own)
        if pixel_dtype is not None:
            self.pixel_dtype = pixel_dtype
        elif hasattr(model, "pixel_dtype"):
            self.pixel_dtype = model.pixel_dtype
        if callable(getattr(model, "pixel_logits", None)):
            # the decoder, keeping its last answer: evaluation's decoder chain decodes the
            # particles the abduction's likelihood decoded just before
            self.pixel_logits = self._pixel_logits
            self.decode_probs = lambda classes, z: torch.sigmoid(self._pixel_logits(classes, z))
        elif callable(getattr(model, "decode_probs", None)):
            self.decode_probs = model.decode_probs
        self._last_decoded: tuple | None = None  # (classes, z, logits, weights) of the last decoding

    def _pixel_logits(self, classes: Tensor, z: Tensor) -> Tensor:
        """The model's ``pixel_logits``; asked again for the same classes and Z
        (compared by value), the same logits (``decode_probs`` is their sigmoid,
        as the ImageModel protocol defines it)."""
        last, weights = self._last_decoded, weights_version(self.model)
        if (last is not None and last[3] == weights and last[0].shape == classes.shape and last[1].shape == z.shape
                and last[1].dtype == z.dtype and torch.equal(last[0], classes) and torch.equal(last[1], z)):
            return last[2]
        logits = self.model.pixel_logits(classes, z)
        self._last_decoded = (classes.clone(), z.clone(), logits, weights)
        return logits

    def z_posterior(self, x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        """q(Z | X, factors); a model that splits it into image features and a
        head (the causal VAE: ``features(x)``, ``z_params(features, onehot(classes))``)
        computes the features once per run of identical images."""
        if x.shape[0] < 2 or not all(callable(getattr(self.model, m, None)) for m in _SPLIT_ENCODER):
            return self.model.z_posterior(x, classes)
        feats, run = self._features(x)
        return self.model.z_params(feats[run], self.model.onehot(classes))

    def factor_logits(self, x: Tensor) -> dict[str, Tensor]:
        if x.shape[0] < 2:
            return self.model.factor_logits(x)
        if all(callable(getattr(self.model, m, None)) for m in _SPLIT_FACTORS) and hasattr(self.model, "layout"):
            # the causal VAE: a head on the same features q(Z | X, factors) reads next
            feats, run = self._features(x)
            logits = self.model.layout.split(self.model.factor_logits_flat(feats))
        else:
            new, run = _runs(x)
            logits = self.model.factor_logits(x[new])
        return {f: v[run] for f, v in logits.items()}

    def _features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(features of each run's image, each row's run)``; an abduction asks
        q(factors | X) then q(Z | X, factors) of the very same images tensor,
        whose features are then computed once (kept for that tensor, unchanged)."""
        key = (x._version, weights_version(self.model))
        if self._last is not None and self._last[0][0] is x and self._last[0][1] == key:
            return self._last[1]
        new, run = _runs(x)
        out = (self.model.features(x[new]), run)
        self._last = ((x, key), out)
        return out


#: The members of a model whose q(Z | X, factors) is a head on image features.
_SPLIT_ENCODER = ("features", "z_params", "onehot")
#: The same for q(factors | X) (and the layout that splits its logits by factor).
_SPLIT_FACTORS = ("features", "factor_logits_flat")


def _runs(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(new, run)``: which rows of ``x`` start a run of identical consecutive
    images, and each row's run index."""
    flat = x.reshape(x.shape[0], -1)
    new = torch.ones(x.shape[0], dtype=torch.bool)
    new[1:] = (flat[1:] != flat[:-1]).any(1)
    return new, torch.cumsum(new.long(), 0) - 1
