"""Training's validation figures of an image model, through the family protocol only.

:func:`validation_scores` scores any model a registered family builds
(:mod:`cvaeq.model.family`) on labelled images (training's held-out split,
and images uniform over the grid): ``loss`` for the ELBO, ``factor_logits``
for the accuracy of q(factors | X) (modulo the world's ``equivalent``
classes, e.g. dSprites' orientation given the shape), ``z_posterior`` and the
decoder (through :class:`~cvaeq.image_model.ImageModelAdapter`) for the
reconstruction. (:func:`cvaeq.evaluation.evaluate` is the other thing: every
score of a trained model against the world's true counterfactuals.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..image_model import ImageModelAdapter

__all__ = ["validation_scores"]


@torch.no_grad()
def validation_scores(
    model, images: np.ndarray, classes: np.ndarray, device: torch.device, batch: int = 500, seed: int = 0, world=None
) -> dict:
    """Validation figures: ``elbo_nats`` (-ELBO of log p(X | factors), nats/image,
    one particle), ``aux_nll`` (when the model's loss reports it),
    ``accuracy`` per factor of q(factors | X)'s argmax (modulo the world's
    equivalent classes), ``<factor>_exact`` for each such factor (the exact
    class; dSprites: ``orientation_exact``) and ``recon_iou`` (IoU of the
    decoded mean image at Z's posterior mean, thresholded at 0.5, with the input).
    In an 8-bit world (``world.pixel == "8bit"``; images uint8 levels) the
    images enter as ``levels / 255``, and instead of ``recon_iou`` it gives
    ``recon_l1`` (mean absolute difference, per pixel and channel on [0, 1],
    of the decoder's ``loc`` at Z's posterior mean, clamped to [0, 1], from
    the input) and ``bits_per_dim`` (``elbo_nats`` in bits per pixel and channel).
    In a world with continuous factors (``classes`` then float64 values) the
    accuracy is of its categorical factors, and ``mae`` gives, per continuous
    factor, the mean absolute error of q(factor | X)'s mean
    (``factor_normals``) in the factor's units.

    :param world: the :class:`~cvaeq.world.World` of the classes (None: the model's ``world``).
    """
    world = world if world is not None else model.world
    tally = _Tally(world, ImageModelAdapter(model, world.image_shape))
    was_training = model.training
    model.eval()
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    for start in range(0, len(classes), batch):
        x = torch.from_numpy(images[start : start + batch]).to(device).float()
        if tally.levels:
            x = x / 255.0
        y = torch.from_numpy(classes[start : start + batch]).to(device)
        _, parts = model.loss(x, y)
        for key in ("elbo_nats", "aux_nll"):
            if key in parts:
                tally.totals[key] = tally.totals.get(key, 0.0) + float(parts[key]) * len(y)
        tally.read(model.factor_logits(x), classes[start : start + batch])
        if tally.continuous:
            tally.read_normals(tally.decoder.factor_normals(x), classes[start : start + batch])
        tally.reconstruct(x, y, model.z_posterior(x, y)[0])
    torch.set_rng_state(gen_state)
    model.train(was_training)
    return tally.scores(len(classes))


class _Tally:
    """The sums behind :func:`validation_scores`, batch by batch."""

    def __init__(self, world, decoder: ImageModelAdapter) -> None:
        self.world, self.decoder = world, decoder
        self.levels = world.pixel == "8bit"
        self.equivalent = {
            f: (world.index(g), world.index(f), np.asarray(table, dtype=bool))
            for f, (g, table) in world.equivalent.items()
        }
        self.totals: dict[str, float] = {}
        self.correct = {f: 0 for f in world.discrete}
        self.continuous = tuple(world.continuous)
        self.abs_err = {f: 0.0 for f in self.continuous}
        self.exact = {f: 0 for f in self.equivalent}
        self.inter = self.union = self.l1 = 0.0

    def read(self, logits: dict, yc: np.ndarray) -> None:
        """q(factors | X)'s argmax against the true classes ``yc`` (modulo equivalent classes)."""
        for f in self.world.discrete:
            i = self.world.index(f)
            pred = logits[f].argmax(-1).cpu().numpy()
            if f in self.equivalent:
                g, _, table = self.equivalent[f]
                ok = table[yc[:, g], pred, yc[:, i]]
                self.exact[f] += int((pred == yc[:, i]).sum())
            else:
                ok = pred == yc[:, i]
            self.correct[f] += int(ok.sum())

    def read_normals(self, normals: dict, values: np.ndarray) -> None:
        """q(factor | X)'s means of the continuous factors against their true ``values``."""
        for f in self.continuous:
            loc = normals[f][0].detach().cpu().double().numpy()
            self.abs_err[f] += float(np.abs(loc - values[:, self.world.index(f)]).sum())

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor, loc: torch.Tensor) -> None:
        """The decoded picture at Z's posterior mean against ``x``: IoU sums, or (8-bit) the L1 sum."""
        if self.levels:  # the decoder's loc (cvaeq.image_model's 8-bit decoder path)
            mean = self.decoder.decode(y, loc)[0].clamp(0.0, 1.0)
            self.l1 += float((mean - x.reshape(mean.shape)).abs().mean(dim=tuple(range(1, mean.dim()))).sum())
            return
        rec = self.decoder.pixels_on(y, loc)
        xb = x.reshape(rec.shape) > 0.5
        self.inter += float((rec & xb).sum())
        self.union += float((rec | xb).sum())

    def scores(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {key: total / n for key, total in self.totals.items()}
        out["accuracy"] = {f: self.correct[f] / n for f in self.world.discrete}
        if self.continuous:
            out["mae"] = {f: self.abs_err[f] / n for f in self.continuous}
        out.update({f"{f}_exact": self.exact[f] / n for f in self.equivalent})
        if self.levels:
            from ..levels import bits_per_dim

            out["recon_l1"] = self.l1 / n
            if "elbo_nats" in out:
                out["bits_per_dim"] = bits_per_dim(out["elbo_nats"], int(np.prod(self.world.image_shape)))
            return out
        out["recon_iou"] = self.inter / max(self.union, 1.0)
        return out
