"""How good the amortised proposal q(factors, Z | X) is: importance weights read off real pictures.

Given a picture alone, abduction draws the factors and Z from the image
model's proposals (q(factors | X): ``factor_logits`` for categorical
factors, ``factor_normals`` for continuous ones; then q(Z | X, factors)) and
weighs each particle by ``p(factors, Z) p(X | factors, Z) / q``
(:mod:`cvaeq.engine.abduction`). The answer is right whatever q is; how many
particles it rests on is q's quality. :func:`proposal_quality` reports, over
a set of pictures:

* the **effective sample size** (Kish, ``1 / sum w^2``) of each picture's
  particles, and its fraction of the particles: 1 for a proposal equal to
  the posterior, ``1 / S`` for one that explains the picture by a single particle;
* the **spread of the log-weights** (their standard deviation over the
  particles of positive weight): 0 for the posterior, and the ESS falls
  roughly as ``exp(-sd^2)`` for a log-normal spread;
* the fraction of particles of **weight 0** (a draw the story or the
  picture rules out, e.g. a thickness below 0.5 under DeepSCM's law);
* where the labels are known (``truth``): each factor's weighted posterior
  mean against its label, the **MAE** of a continuous factor and the
  **accuracy** of the posterior mode of a categorical one.

``cvaeq eval``'s metrics call it on the held-out pictures; every number is
per picture (``per_image``) and summarised (``summary``) so that a
bootstrap over pictures can give an interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import QueryError
from ..scm import SCM
from .abduction import abduct
from .particles import checked_seed, normalised

__all__ = ["proposal_quality", "ProposalQuality"]


@dataclass(frozen=True)
class ProposalQuality:
    """Per-picture figures of the proposal (numpy ``(N,)`` each) and their summary.

    :ivar ess: effective sample size of each picture's particles.
    :ivar log_weight_sd: standard deviation of the finite log-weights.
    :ivar zero_weight: fraction of particles of weight 0.
    :ivar errors: ``{factor: (N,)}`` absolute error of the posterior mean of a
        continuous factor, or 0/1 error of the posterior mode of a categorical
        one (only with ``truth``).
    :ivar particles: particles per picture.
    """

    ess: np.ndarray
    log_weight_sd: np.ndarray
    zero_weight: np.ndarray
    particles: int
    errors: dict[str, np.ndarray] = field(default_factory=dict)
    continuous: tuple[str, ...] = ()

    def summary(self) -> dict[str, object]:
        """JSON-ready means over the pictures: ``images``, ``particles``,
        ``ess_mean``, ``ess_median``, ``ess_min``, ``ess_fraction_mean``,
        ``log_weight_sd_mean``, ``zero_weight_mean``, and per factor
        ``mae`` (continuous) or ``accuracy`` (categorical) when labels were given."""
        out: dict[str, object] = {
            "images": int(len(self.ess)),
            "particles": self.particles,
            "ess_mean": float(self.ess.mean()),
            "ess_median": float(np.median(self.ess)),
            "ess_min": float(self.ess.min()),
            "ess_fraction_mean": float(self.ess.mean() / self.particles),
            "log_weight_sd_mean": float(self.log_weight_sd.mean()),
            "zero_weight_mean": float(self.zero_weight.mean()),
        }
        for f, e in self.errors.items():
            out[f"{f}_mae" if f in self.continuous else f"{f}_accuracy"] = float(
                e.mean() if f in self.continuous else 1 - e.mean()
            )
        return out


def proposal_quality(
    scm: SCM,
    images: Sequence[object] | torch.Tensor | np.ndarray,
    num_particles: int = 100,
    seed: int = 0,
    truth: np.ndarray | None = None,
    factors: Sequence[str] | None = None,
    refined: bool = False,
) -> ProposalQuality:
    """The proposal's importance weights on each of ``images`` (abduction from X alone).

    :param scm: an SCM with the image node X (:func:`cvaeq.scm.build_scm` with an image model).
    :param images: ``(N, *image_shape)`` pictures (uint8 levels in an 8-bit world, 0/1 in a binary one).
    :param num_particles: particles per picture (no resampling: the raw weights are scored).
    :param seed: seeds torch's RNG (forked; the same seed gives the same figures).
    :param truth: optional ``(N, F)`` labels in the order ``factors`` (classes; values of continuous factors).
    :param factors: the columns of ``truth`` (default: the SCM's world's factor names).
    :param refined: score the proposal as queries use it, refined for each picture
        (an 8-bit image's Laplace fit, :mod:`cvaeq.mechanisms.latent_refinement`: about a
        second a Morpho-MNIST picture); False (default): the amortised q itself, which is what
        this measures (the image mechanism's ``refine_latent`` is off for the call, restored after).
    """
    if "X" not in scm.nodes:
        raise QueryError("the proposal's quality needs an SCM with the image X (build_scm with an image model)")
    seed = checked_seed(seed)
    pixel = getattr(getattr(scm, "world", None), "pixel", "binary")
    names = tuple(factors) if factors is not None else tuple(getattr(scm.world, "names", ()))
    continuous = tuple(f for f in names if getattr(scm.mechanisms[f], "continuous", False))
    image_mechanism = scm.mechanisms["X"]
    was = getattr(image_mechanism, "refine_latent", None)
    if was is not None:
        image_mechanism.refine_latent = was and refined  # type: ignore[attr-defined]  # an 8-bit image's switch
    try:
        return _quality(scm, images, num_particles, seed, truth, names, continuous, pixel)
    finally:
        if was is not None:
            image_mechanism.refine_latent = was  # type: ignore[attr-defined]


def _quality(scm, images, num_particles, seed, truth, names, continuous, pixel) -> ProposalQuality:
    """:func:`proposal_quality`'s loop over the pictures, the image mechanism as set."""
    ess, sd, zero = [], [], []
    errors: dict[str, list[float]] = {f: [] for f in names} if truth is not None else {}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.default_generator.manual_seed(seed)
        for i, image in enumerate(images):
            x = torch.as_tensor(np.asarray(image))
            x = x if pixel == "8bit" else x.float()
            p = abduct(scm, {"X": x}, num_particles, resample_below=0.0)
            lw = p.log_weights.double()
            finite = torch.isfinite(lw)
            ess.append(p.ess)
            sd.append(float(lw[finite].std(unbiased=False)) if int(finite.sum()) > 1 else 0.0)
            zero.append(float((~finite).double().mean()))
            if truth is not None:
                _score(errors, p.values, normalised(lw), truth[i], names, continuous, scm)
    return ProposalQuality(
        ess=np.array(ess),
        log_weight_sd=np.array(sd),
        zero_weight=np.array(zero),
        particles=num_particles,
        errors={f: np.array(e) for f, e in errors.items()},
        continuous=continuous,
    )


def _score(errors, values, w, row, names, continuous, scm) -> None:
    """One picture's posterior mean (continuous) or mode (categorical) against its labels."""
    for j, f in enumerate(names):
        v = values[f]
        if f in continuous:
            errors[f].append(abs(float((v.double() * w).sum()) - float(row[j])))
        else:
            size = int(scm.mechanisms[f].size)
            probs = torch.zeros(size, dtype=torch.float64).index_add_(0, v.long(), w)
            errors[f].append(float(int(torch.argmax(probs)) != int(row[j])))
