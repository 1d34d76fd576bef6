"""``evaluate`` for a world of 8-bit pictures (grey or colour, e.g. the colour pendulum).

The same test images, interventions and story truth as for binary worlds
(:mod:`.run`), scored with what means something for levels 0..255 rather
than for on/off pixels (docs/evaluation.md defines every figure once):

* ``factor_accuracy`` of argmax q(factors | x), as for binary worlds;
* the likelihood, in nats per picture and in **bits per dimension** (per
  pixel and channel: :func:`cvaeq.levels.bits_per_dim`), the unit the
  literature reports 8-bit likelihoods in: ``nll`` and ``elbo`` through the
  engine's abduction (K draws of q(f | x) q(z | x, f), the SCM's
  discretised-logistic likelihood), and ``nll_given_factors`` with the true
  factors (the decoder's own likelihood, what training's held-out figure is);
* ``recon_l1``: the decoder's mean picture at argmax q(f | x) and the mean of
  q(z | x, f) against the input;
* ``counterfactual``, per intervened factor: the model's **mean
  counterfactual picture** (the weighted mean over its K particles of the
  predicted levels, / 255) against the **true counterfactual's mean
  picture** (the mean over the story's particles of the rendered pictures,
  / 255; :mod:`.truth`): ``l1`` (mean absolute difference per pixel and
  channel) and ``psnr`` (``10 log10(1 / MSE)`` in dB, peak 1), beside the
  story's own K-particle answer against the same truth (``l1_story``,
  ``psnr_story``: the ceiling with K particles); ``effectiveness`` and
  ``effectiveness_rendered`` as for binary worlds (every particle's
  counterfactual picture read by q(f | x), and by the renderer);
* ``composition`` through the engine: the null intervention (abduction on
  the picture, no ``do``, prediction) applied once and 10 times, each
  result fed back; the share of bytes (pixels, channels and particles) that
  differ from the evidence: exactly 0 with exact abduction. Through the
  decoder alone: the weighted mean over the abducted (factors, Z) of the
  decoder's picture (its ``loc`` clamped to [0, 1]), rounded to levels and
  fed back, L1 and PSNR after 1 and 10;
* ``tv``: as for binary worlds (factor level, no pictures).

IoU is not reported: it is a score of binary pictures.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import levels as lv
from ..engine import abduct_groups, group_mean, predict_groups
from ..image_model import ImageModelAdapter
from ..story import IMAGE, LATENT
from .metrics import factor_correct, finite_or_none, given_factor
from .streams import STORY_STREAM, seeded_batches, sub_seed
from .truth import counterfactual_of_particles, rendered_effectiveness, story_particles

__all__ = ["evaluate_levels", "l1", "psnr", "to_unit"]

#: The largest PSNR reported (dB): two equal pictures have an MSE of 0 and an infinite PSNR,
#: which JSON cannot hold; 100 dB is an MSE of 1e-10, far below one level's (1.5e-5).
MAX_PSNR = 100.0


def to_unit(pictures) -> np.ndarray:
    """Levels 0..255 (any dtype) as float64 on the [0, 1] scale."""
    return np.asarray(pictures, dtype=np.float64) / (lv.LEVELS - 1)


def l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per picture, the mean absolute difference of two pictures on the [0, 1] scale (every pixel and channel).

    >>> l1(np.zeros((1, 3, 2, 2)), np.full((1, 3, 2, 2), 0.5)).tolist()
    [0.5]
    """
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return d.reshape(len(d), -1).mean(1)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per picture, the peak signal-to-noise ratio in dB of two pictures on the [0, 1] scale:
    ``10 log10(1 / MSE)`` (peak 1), at most :data:`MAX_PSNR`.

    >>> psnr(np.zeros((1, 3, 2, 2)), np.full((1, 3, 2, 2), 0.1)).round(6).tolist()
    [20.0]
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    mse = (d * d).reshape(len(d), -1).mean(1)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(1.0 / mse), MAX_PSNR)


def _read(model, x_unit: torch.Tensor, names) -> np.ndarray:
    """``(N, F)`` argmax classes of q(factors | x) of pictures on the [0, 1] scale."""
    logits = model.factor_logits(x_unit)
    return torch.stack([logits[f].argmax(-1) for f in names], -1).numpy()


def _decoder_mean(model, g, names) -> torch.Tensor:
    """``[B, C, H, W]`` the weighted mean over each group's particles of the decoder's picture at
    their (factors, Z): its ``loc`` clamped to [0, 1], the median of each pixel's logistic (the
    exact mean, :func:`cvaeq.levels.mean_unit`, sums 255 terms a pixel: too dear for K particles)."""
    v = g.particles.values
    classes = torch.stack([v[f].long() for f in names], -1)
    loc, _ = model.decode(classes, v[LATENT].float())
    loc = loc.clamp(0.0, 1.0)
    return group_mean(g, loc.reshape(g.groups, g.per_group, *loc.shape[1:]))


def _likelihood_given_factors(model, world, x: torch.Tensor, classes: torch.Tensor, k: int) -> torch.Tensor:
    """``[B]`` importance-sampled ``-log p(x | f)`` (nats) with the true factors and K draws of q(z | x, f)."""
    loc, scale = model.z_posterior(lv.to_unit(x), classes)
    q = torch.distributions.Normal(loc.double(), scale.double())
    z = q.sample((k,))  # [K, B, D]
    prior = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    out = []
    for j in range(k):  # one draw at a time: [B, C, H, W] at once, not [K B, C, H, W]
        mu, log_scale = model.decode(classes, z[j].float())
        out.append(lv.log_prob(x, mu, log_scale).flatten(1).sum(-1).double())
    log_w = torch.stack(out) + (prior.log_prob(z) - q.log_prob(z)).sum(-1)
    return -(torch.logsumexp(log_w, 0) - math.log(k))


def _batch(
    mech, scm, classes: np.ndarray, values: dict, k: int, seed: int, truth_particles: int, steps: int, add, pred=None
) -> None:
    """Score one batch of test images: each part adds its rows with ``add`` (in this order: the random stream)."""
    world = mech.story.world
    # the model as cvaeq calls it (cvaeq.image_model): its 8-bit decoder gives (loc, log_scale)
    model = ImageModelAdapter(mech.image_model, world.image_shape)
    x = torch.from_numpy(world.render_checked(np.asarray(classes, dtype=np.int64)))  # uint8 levels [B, C, H, W]
    g = _reading_and_likelihood(model, scm, world, x, classes, k, add)
    _counterfactuals(mech.story, model, g, classes, values, k, seed, truth_particles, add)
    _composition(scm, model, world.names, g, x, k, steps, add)
    if pred is not None:  # --proxies: the predictors' figures beside the true ones, on their own random stream
        from .truthfree import PROXY_STREAM, truthfree_batch

        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(sub_seed(seed, PROXY_STREAM))
            truthfree_batch(world, mech.story, scm, model, pred, x, classes, values, k, seed, steps, add, g=g)


def _reading_and_likelihood(model, scm, world, x: torch.Tensor, classes: np.ndarray, k: int, add):
    """q(factors | x)'s accuracy, the reconstruction, and the likelihood; returns the abduction's groups."""
    names, x_unit, xs = world.names, lv.to_unit(x), to_unit(x.numpy())
    read = _read(model, x_unit, names)
    for i, f in enumerate(names):
        given = None if given_factor(world, f) is None else classes[:, world.index(given_factor(world, f))]
        add(f"acc.{f}", factor_correct(world, f, read[:, i], classes[:, i], given))
    z_mean, _ = model.z_posterior(x_unit, torch.from_numpy(read))
    recon = lv.mean_unit(*model.decode(torch.from_numpy(read), z_mean))
    add("recon_l1", l1(recon.numpy(), xs))
    g = abduct_groups(scm, {"X": x}, k)
    add("nll", -g.log_marginal().numpy())
    add("elbo", -g.log_weights.mean(1).numpy())
    with torch.random.fork_rng(devices=[]):
        add("nll_given_factors", _likelihood_given_factors(model, world, x, torch.from_numpy(classes), k).numpy())
    return g


def _counterfactuals(
    story, model, g, classes: np.ndarray, values: dict, k: int, seed: int, truth_particles: int, add
) -> None:
    """Each factor's counterfactual against the story's truth: L1, PSNR, the story's own, effectiveness."""
    world, names = story.world, story.world.names
    truth_noise = story_particles(story, classes, truth_particles, sub_seed(seed, STORY_STREAM, 0))
    ideal_noise = story_particles(story, classes, k, sub_seed(seed, STORY_STREAM, 1))
    for i, f in enumerate(names):
        v = values[f]
        truth = counterfactual_of_particles(story, truth_noise, {f: v})
        truth_mean = to_unit(truth.mean_image)
        out = predict_groups(g, {f: torch.from_numpy(v)})
        mean = to_unit(group_mean(g, out["X"]).numpy())
        add(f"l1.{f}", l1(mean, truth_mean))
        add(f"psnr.{f}", psnr(mean, truth_mean))
        ideal = to_unit(counterfactual_of_particles(story, ideal_noise, {f: v}).mean_image)
        add(f"l1_story.{f}", l1(ideal, truth_mean))
        add(f"psnr_story.{f}", psnr(ideal, truth_mean))
        b, kk = out["X"].shape[:2]
        worlds = lv.to_unit(out["X"].reshape(b * kk, *out["X"].shape[2:]))
        got = _read(model, worlds, names)[:, i]
        g_f = given_factor(world, f)
        given = None if g_f is None else np.repeat(truth.mode(g_f), kk)
        ok = factor_correct(world, f, got, np.repeat(v, kk), given).reshape(b, kk)
        add(f"eff.{f}", (g.weights.numpy() * ok).sum(1))
        add(f"eff_rendered.{f}", rendered_effectiveness(world, f, out, v, given, g.weights.numpy()))


def _composition(scm, model, names, g, x: torch.Tensor, k: int, steps: int, add) -> None:
    """Composition through the engine (pictures that differ from the evidence) and through the decoder alone."""
    xs = to_unit(x.numpy())
    # through the engine: every particle's picture, fed back one drawn by weight
    cur, gc = x, g
    for step in range(1, steps + 1):
        prev = cur
        if step > 1:
            gc = abduct_groups(scm, {"X": cur}, k)
        pictures = predict_groups(gc, {})["X"]  # [B, K, C, H, W] uint8
        differ = (pictures != x[:, None]).reshape(len(x), -1).double().mean(1)
        if step == 1:
            add("comp.1", differ.numpy())
        pick = torch.multinomial(gc.weights.float(), 1).squeeze(1)
        cur = pictures[torch.arange(len(x)), pick]
        # A step whose drawn picture is its input is a fixed point: every later step abducts on this
        # same picture and replays it (as for binary worlds, run.py), so the chain's end is this step.
        if step == steps or torch.equal(cur, prev):
            add(f"comp.{steps}", differ.numpy())
            break
    # composition through the decoder alone (no pixel noise): its mean picture, rounded to levels, fed back;
    # later steps only weigh (factors, Z) by the picture (no pixel noise drawn)
    mean = _decoder_mean(model, g, names)
    for step in range(1, steps + 1):
        if step > 1:
            levels = torch.round(mean.clamp(0, 1) * (lv.LEVELS - 1)).to(torch.uint8)
            mean = _decoder_mean(model, abduct_groups(scm, {"X": levels}, k, weigh_only=(IMAGE,)), names)
        if step in (1, steps):
            add(f"comp_dec_l1.{step}", l1(mean.numpy(), xs))
            add(f"comp_dec_psnr.{step}", psnr(mean.numpy(), xs))


def evaluate_levels(
    mech,
    scm,
    classes: np.ndarray,
    values: dict,
    samples: int,
    seed: int,
    batch: int,
    truth_particles: int,
    tv_particles: int,
    progress: bool,
    steps: int,
    pred=None,
) -> dict:
    """The scores of an 8-bit world's model (module docstring); what ``cvaeq eval --json`` prints for it.

    Called by :func:`cvaeq.evaluation.evaluate` with its test images
    (``classes``), interventions (``values``) and seeds; every batch's random
    numbers come from (seed, its first image), as there.
    """
    from .tv import tv_scores

    n = len(classes)
    rows: dict[str, list] = {}

    def add(key, value):
        rows.setdefault(key, []).append(np.asarray(value, dtype=np.float64))

    for sl in seeded_batches(n, batch, seed, progress):
        _batch(
            mech,
            scm,
            classes[sl],
            {f: v[sl] for f, v in values.items()},
            samples,
            sub_seed(seed, sl.start),
            truth_particles,
            steps,
            add,
            pred,
        )

    tv = tv_scores(mech.story, mech.factor_logits, num_particles=tv_particles, seed=seed)
    return _report(mech, rows, tv, n, samples, seed, steps, pred)


def _figures(world, mean, steps: int) -> dict:
    """The figures of :func:`evaluate_levels` (every float of its JSON but the TV) from ``mean(key)``,
    the mean over test pictures of a score row (called again per bootstrap resample, :mod:`.bootstrap`)."""
    names = world.names
    dims = int(np.prod(world.image_shape))
    per = {
        key: {f: mean(f"{key}.{f}") for f in names}
        for key in ("l1", "psnr", "l1_story", "psnr_story", "eff", "eff_rendered")
    }
    nll, elbo, nll_f = mean("nll"), mean("elbo"), mean("nll_given_factors")
    return {
        "nll_nats": finite_or_none(nll),
        "elbo_nats": finite_or_none(elbo),
        "nll_given_factors_nats": finite_or_none(nll_f),
        "bits_per_dim": {
            key: finite_or_none(float(lv.bits_per_dim(v, dims)))
            for key, v in (("nll", nll), ("elbo", elbo), ("nll_given_factors", nll_f))
        },
        "recon_l1": mean("recon_l1"),
        "factor_accuracy": {f: mean(f"acc.{f}") for f in names},
        "counterfactual": {
            "l1": per["l1"],
            "l1_mean": float(np.mean(list(per["l1"].values()))),
            "psnr": per["psnr"],
            "psnr_mean": float(np.mean(list(per["psnr"].values()))),
            "l1_story": per["l1_story"],
            "psnr_story": per["psnr_story"],
            "effectiveness": per["eff"],
            "effectiveness_rendered": per["eff_rendered"],
            "composition": {str(s): mean(f"comp.{s}") for s in (1, steps)},
            "composition_decoder_l1": {str(s): mean(f"comp_dec_l1.{s}") for s in (1, steps)},
            "composition_decoder_psnr": {str(s): mean(f"comp_dec_psnr.{s}") for s in (1, steps)},
        },
    }


def _report(mech, rows: dict[str, list], tv: dict, n: int, samples: int, seed: int, steps: int, pred=None) -> dict:
    """The JSON of :func:`evaluate_levels` from the scores' rows, with every figure's interval."""
    from .bootstrap import with_intervals
    from .truthfree import add_proxies, proxy_figures

    world = mech.story.world

    def mean(key):
        return float(np.concatenate(rows[key]).mean())

    def figures(m) -> dict:
        out = _figures(world, m, steps)
        if pred is not None:
            out["proxies"] = proxy_figures(world, m, steps)
        return out

    out = {
        "model": mech.name,
        "world": world.name,
        "pixel": world.pixel,
        "n": n,
        "samples": samples,
        "seed": seed,
        **figures(mean),
        "tv": {
            "interventional": tv["interventional"],
            "counterfactual": tv["counterfactual"],
            "queries": len(tv["queries"]),
        },
    }
    out = with_intervals(out, figures, rows, tv, seed)
    return out if pred is None else add_proxies(out, pred, world)
