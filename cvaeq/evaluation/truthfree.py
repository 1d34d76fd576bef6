"""The figures that need no renderer: what ``cvaeq eval`` reports where no true counterfactual exists.

A world of real labelled pictures (Morpho-MNIST) has no renderer, so no
counterfactual picture can be compared with a true one. What can be scored,
as the literature does (Monteiro et al., ICLR 2023, "Measuring axiomatic
soundness of counterfactual image models"; Melistas et al., NeurIPS 2024,
"Benchmarking counterfactual image generation"), on held-out labelled pictures
``x`` through the engine (docs/evaluation.md defines each once):

* **the evidence**: each held-out picture **with its labels**, as the
  literature's counterfactuals take it (DeepSCM's ``counterfactual(obs=...)``
  observes the image and every attribute; so do the benchmarks'
  effectiveness scores): abduction is then exact for the factors and the
  figures measure the picture. The same effectiveness is also given with the
  picture alone as evidence (``effectiveness_picture_only``), the harder
  question a user asks of an unlabelled picture: there the factual factors'
  posterior uncertainty is carried into the counterfactual (under
  ``do(thickness)`` a thickness abducted 0.1 px off moves DeepSCM's
  counterfactual intensity by about 10 grey levels at its sigmoid's middle).
* **effectiveness**: for each factor ``f``, ``do(f = v)`` with ``v`` drawn
  from the story; every particle's counterfactual picture is read by
  cvaeq's anti-causal predictors (:mod:`.predictors`) and compared with each
  factor's counterfactual value in the SCM: ``v`` for ``f``, the value the
  story's mechanisms replay downstream for its descendants (their noise
  abducted from the evidence's labels: one value for invertible mechanisms,
  a distribution for Gumbel-max ones, whose particle ``k`` is paired with
  the model's particle ``k``), the evidence's own label for the others.
  Accuracy for a categorical factor, MAE for a continuous one, beside the
  **floor**: the same predictors on real held-out pictures.
* **composition**: the null intervention (abduction on ``x``, no ``do``,
  prediction) applied once and ten times, one predicted picture fed back
  each time; L1 to ``x``. Through the engine (the abducted pixel noise
  replayed: exactly 0 with exact abduction) and through the decoder alone
  (its mean picture from the abducted factors and Z).
* **reversibility**: ``do(f = v)``, one counterfactual picture drawn by
  weight, abduction on it and ``do(f = the value the drawn particle had
  abducted for x)``; L1 of the mean picture to ``x``.
* **likelihood**: ``-log p(x)`` in nats and bits per dimension (the engine's
  importance-sampled marginal, as for every world).

On a world with a renderer the same figures can be set beside the true ones
(``cvaeq eval --proxies``): the predictors also read the **true**
counterfactual pictures (the story's counterfactual worlds, rendered), the
proxy's own reading of a perfect answer.

A world without a renderer may still know one counterfactual exactly: a
factor it redraws in a real picture (``World.redraw``; Morpho-MNIST's
intensity) on which no other factor depends. Under ``do`` of such a factor,
``truthfree.exact`` gives the L1 of the model's mean counterfactual picture to
the true one, and the predictors' reading of the true one (what the proxy
says of a perfect answer), as on a world with a renderer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ..engine import abduct_groups, group_mean, predict_groups
from ..errors import DataError
from ..scm import build_scm
from ..story import IMAGE, LATENT
from .bootstrap import with_intervals
from .metrics import finite_or_none
from .streams import seeded_batches, sub_seed

__all__ = [
    "evaluate_truthfree",
    "exact_factors",
    "redrawn_intervention",
    "truthfree_batch",
    "truthfree_figures",
    "story_targets",
    "targets",
    "PROXY_STREAM",
    "PREDICTOR_SEED",
    "TARGET_RATIO",
    "KEPT",
    "WHY_NO_TRUTH",
    "EVIDENCE",
    "proxy_figures",
    "add_proxies",
]

#: Tags the random stream of the truth-free figures within a batch (apart from the true figures').
PROXY_STREAM = 0x7F
#: The predictors' seed: one set of predictors serves every evaluation seed (and its cache file).
PREDICTOR_SEED = 0
#: Targets (issue 24, section 4): a continuous factor's counterfactual MAE within this many floors,
TARGET_RATIO = 1.5
#: and a factor the intervention does not reach kept (read as the evidence's) at least this often.
KEPT = 0.95
#: The evidence of a renderer-less world's counterfactuals (``evidence`` in eval's JSON).
EVIDENCE = (
    "each held-out picture with its labels, as the literature's counterfactuals take it (DeepSCM, the "
    "benchmarks); effectiveness_picture_only: the picture alone"
)
#: What eval says where the world has no renderer.
WHY_NO_TRUTH = (
    "this world has no renderer: its pictures are real labelled files, so its counterfactuals have no true picture "
    "to compare with (but under do() of a factor the world redraws exactly: truthfree.exact); the figures below "
    "need no truth (anti-causal predictors and axioms)"
)


def _unit(world, pictures) -> np.ndarray:
    """Pictures in the world's levels as float64 on [0, 1]."""
    return np.asarray(pictures, dtype=np.float64) / world.max_level


def _l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return d.reshape(len(d), -1).mean(1)


def _expected_l1(world, g, pics: torch.Tensor, xs: np.ndarray) -> np.ndarray:
    """``(B,)``: each group's particles' L1 to ``xs`` ``(B, ...)``, weighted by their weights."""
    b, k = pics.shape[:2]
    d = np.abs(_unit(world, pics.numpy()) - xs[:, None]).reshape(b, k, -1).mean(2)
    return (g.weights.double().numpy() * d).sum(1)


def _tensor(world, factor: str, values) -> torch.Tensor:
    """Values of one factor as the engine takes them: float64 for a continuous factor, int64 classes else."""
    v = np.asarray(values)
    if world.factor(factor).continuous:
        return torch.from_numpy(v.astype(np.float64).copy())
    return torch.from_numpy(v.astype(np.int64).copy())


def _factor_matrix(world, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``[S, F]`` factors as a model receives them: int64 classes, or float64 when the world has a continuous factor."""
    if world.continuous:
        return torch.stack([values[f].double() for f in world.names], -1)
    return torch.stack([values[f].long() for f in world.names], -1)


def story_targets(story, factual: np.ndarray, do: Mapping[str, np.ndarray], k: int, seed: int) -> dict:
    """``{factor: (N, K)}`` each factor's counterfactual value in the story's SCM under ``do``: the story's
    noise abducted from the ``N`` evidence labels ``factual`` ``(N, F)`` (every factor observed: exact for
    Gumbel-max and invertible mechanisms), the intervention applied, the descendants replayed."""
    world = story.world
    evidence = {f: _tensor(world, f, factual[:, i]) for i, f in enumerate(world.names)}
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        g = abduct_groups(build_scm(story), evidence, k)
        out = predict_groups(g, {f: _tensor(world, f, v) for f, v in do.items()})
    return {f: out[f].numpy() for f in world.names}


def _read_scores(pred, world, pictures, tgt: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{factor: (B, K)}`` the predictors' score of each particle's picture against its paired target."""
    b, kk = next(iter(tgt.values())).shape
    flat = {f: v.reshape(b * kk) for f, v in tgt.items()}
    conds = {c: flat[c] for f in pred.readers for c in pred.conditions_of(f)}
    read = pred.read(pictures, conds)
    out = {}
    for f in world.names:
        given_name = world.equivalent.get(f, (None,))[0]
        given = None if given_name is None else flat[given_name].astype(np.int64)
        out[f] = pred.score(f, read[f], flat[f], given).reshape(b, kk)
    return out


def _decoder_picture(world, model, g) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's weighted mean picture over the abducted (factors, Z), on [0, 1], and the
    picture fed back as evidence (8-bit: the mean of the clamped ``loc``, rounded to levels when
    fed back; binary: the mean probability thresholded at 0.5, both scored and fed back, as
    ``composition_decoder_l1`` of binary worlds)."""
    v = g.particles.values
    factors = _factor_matrix(world, v)
    if world.pixel == "8bit":
        loc, _ = model.decode(factors, v[LATENT].float())
        loc = loc.clamp(0.0, 1.0)
        mean = group_mean(g, loc.reshape(g.groups, g.per_group, *loc.shape[1:]))
        mean = mean.reshape(g.groups, *world.image_shape)
        return mean, torch.round(mean * world.max_level).to(torch.uint8)
    probs = model.pixel_probs(factors, v[LATENT].float())
    mean = group_mean(g, probs.reshape(g.groups, g.per_group, *probs.shape[1:]))
    binary = (mean > 0.5).float()  # a binary picture like the data, as composition_decoder_l1 is scored
    return binary, binary


def truthfree_batch(
    world,
    story,
    scm,
    model,
    pred,
    x: torch.Tensor,
    factual: np.ndarray,
    do_values: Mapping[str, np.ndarray],
    k: int,
    seed: int,
    steps: int,
    add: Callable[[str, np.ndarray], None],
    g=None,
    labelled: bool = False,
) -> None:
    """Score one batch of evidence pictures ``x`` with labels ``factual`` ``(B, F)``: every row
    ``tf.*`` of :func:`truthfree_figures`, added with ``add``.

    :param g: the abduction on ``x`` when the caller has it (the true figures' own), else made here.
    :param labelled: the counterfactuals' evidence is each picture **with its labels**, as the
        literature's protocol takes a held-out picture (DeepSCM's ``counterfactual(obs=...)``, the
        benchmarks' effectiveness); their effectiveness is then also read with the picture alone
        as evidence (``tf.eff_pic``). False: the picture alone (a world with a renderer's proxies).
    """
    if g is None:
        g = abduct_groups(scm, {IMAGE: x}, k)
    add("tf.nll", -g.log_marginal().numpy())
    _proposal(world, g, factual, add)
    given = g
    if labelled:
        labels = {f: _tensor(world, f, factual[:, i]) for i, f in enumerate(world.names)}
        given = abduct_groups(scm, {IMAGE: x, **labels}, k)
    for i, f in enumerate(world.names):
        v = np.asarray(do_values[f])
        _intervened(world, story, scm, pred, given, x, factual, (i, f), v, k, seed, add, labelled)
        if labelled:  # the same question with the picture alone as evidence
            _effectiveness(world, story, pred, g, factual, (i, f), v, k, seed, add, "tf.eff_pic")
    _composition(world, scm, model, given, x, k, steps, add)


def _proposal(world, g, factual: np.ndarray, add) -> None:
    """The factor proposal's quality on each picture: its effective sample size as a fraction of
    the particles (the raw weights, before any resampling), and the posterior's error against the
    picture's labels (a continuous factor: the absolute error of its posterior mean; a categorical
    one: the posterior probability of the labelled class)."""
    raw = torch.softmax(g.log_weights, dim=1)
    add("tf.prop.ess", (1.0 / (raw * raw).sum(1) / g.per_group).numpy())
    w = g.weights
    for i, f in enumerate(world.names):
        values = g.particles.values[f].reshape(g.groups, g.per_group)
        if world.factor(f).continuous:
            post = (w * values.double()).sum(1).numpy()
            add(f"tf.prop.{f}", np.abs(post - factual[:, i].astype(np.float64)))
        else:
            label = torch.as_tensor(factual[:, i].astype(np.int64))[:, None]
            add(f"tf.prop.{f}", (w * (values == label).double()).sum(1).numpy())


def _effectiveness(world, story, pred, g, factual, which, v: np.ndarray, k: int, seed: int, add, key: str):
    """Under ``do(f = v)`` on the abduction ``g``: every particle's counterfactual picture read by the
    predictors against each factor's SCM value (rows ``key.f.r``); returns the targets and the prediction."""
    i, f = which
    b = len(factual)
    tgt = story_targets(story, factual, {f: v}, k, sub_seed(seed, PROXY_STREAM, i))
    out = predict_groups(g, {f: _tensor(world, f, v)})
    scores = _read_scores(pred, world, out[IMAGE].reshape(b * k, *out[IMAGE].shape[2:]).numpy(), tgt)
    w = g.weights.numpy()
    for r in world.names:
        add(f"{key}.{f}.{r}", (w * scores[r]).sum(1))
    return tgt, out


def _intervened(
    world, story, scm, pred, g, x, factual, which, v: np.ndarray, k: int, seed: int, add, labelled: bool = False
) -> None:
    """Under ``do(f = v)`` (``which = (i, f)``, the ``i``-th factor): every factor's effectiveness (and,
    where the true counterfactual pictures exist, a renderer's or the world's redrawing of ``f``, the
    proxy's reading of them; for the redrawn ones also the model's L1 to them), and the round trip back
    to the abducted value (``labelled``: the way back's evidence is the drawn counterfactual picture with
    its particle's factor values, as the way there had the labels). ``seed``: the batch's."""
    i, f = which
    names = world.names
    b = len(x)
    rows = torch.arange(b)
    tgt, out = _effectiveness(world, story, pred, g, factual, which, v, k, seed, add, "tf.eff")
    if f in exact_factors(world, story):  # the world redraws f exactly: the true counterfactual picture
        truth = world.redraw_checked(f, x.numpy().astype(np.uint8), v)  # binary pictures come as 0./1.
        read = _read_scores(pred, world, truth, {c: t[:, :1] for c, t in tgt.items()})
        for r in names:
            add(f"tf.eff_truth.{f}.{r}", read[r][:, 0])
        model_mean = group_mean(g, out[IMAGE]).numpy()
        add(f"tf.l1_truth.{f}", _l1(_unit(world, model_mean), _unit(world, truth)))
    if world.has_renderer:  # the proxy's reading of the true counterfactual pictures
        from .truth import render_unique

        # the story's own K-particle answer, drawn apart from the targets as a model's particles are:
        # where a descendant's counterfactual is spread over classes, a perfect answer matches its
        # paired target only as often as two draws agree, and this is that ceiling
        own = story_targets(story, factual, {f: v}, k, sub_seed(seed, PROXY_STREAM, i, 1))
        classes = np.stack([own[c].reshape(b * k) for c in names], -1).astype(np.int64)
        truth = _read_scores(pred, world, render_unique(world, classes), tgt)
        for r in names:
            add(f"tf.eff_truth.{f}.{r}", truth[r].mean(1))
    # reversibility: one counterfactual picture drawn by weight, and back to what that particle abducted
    pick = torch.multinomial(g.weights.float(), 1).squeeze(1)
    drawn = out[IMAGE][rows, pick]
    back = g.particles.values[f].reshape(b, k)[rows, pick]
    evidence = {IMAGE: drawn, **({c: out[c][rows, pick] for c in names} if labelled else {})}
    g2 = abduct_groups(scm, evidence, k)
    mean = group_mean(g2, predict_groups(g2, {f: back})[IMAGE]).numpy()
    add(f"tf.rev.{f}", _l1(_unit(world, mean), _unit(world, x.numpy())))


def _composition(world, scm, model, g, x: torch.Tensor, k: int, steps: int, add) -> None:
    """The null intervention's chain through the engine and through the decoder alone: L1 to ``x``."""
    xs = _unit(world, x.numpy())
    rows = torch.arange(len(x))
    # through the engine: each step's L1 to x, expected over its weighted particles (a picture given
    # back byte for byte scores exactly 0; the L1 of the weighted mean picture would carry the
    # weights' rounding, ~1e-17), one drawn picture fed back
    cur, gc = x, g
    for step in range(1, steps + 1):
        if step > 1:
            gc = abduct_groups(scm, {IMAGE: cur}, k)
        pics = predict_groups(gc, {})[IMAGE]
        if step in (1, steps):
            add(f"tf.comp.{step}", _expected_l1(world, gc, pics, xs))
        prev = cur
        cur = pics[rows, torch.multinomial(gc.weights.float(), 1).squeeze(1)]
        if step < steps and torch.equal(cur, prev):  # a fixed point: every later step gives this picture back
            add(f"tf.comp.{steps}", _expected_l1(world, gc, pics, xs))
            break
    # through the decoder alone: no pixel noise replayed
    mean, fed = _decoder_picture(world, model, g)
    for step in range(1, steps + 1):
        if step > 1:
            mean, fed = _decoder_picture(world, model, abduct_groups(scm, {IMAGE: fed}, k, weigh_only=(IMAGE,)))
        if step in (1, steps):
            add(f"tf.comp_dec.{step}", _l1(mean.numpy(), xs))


def truthfree_figures(
    world,
    mean: Callable[[str], float],
    steps: int,
    floor: Mapping[str, float],
    truth: bool,
    exact: tuple = (),
    labelled: bool = False,
) -> dict:
    """The truth-free figures from ``mean(key)`` (the mean over test pictures of a row; called again per
    bootstrap resample). ``floor``: the predictors' own held-out score (not resampled here); ``exact``:
    the factors whose counterfactual the world draws exactly (:func:`exact_factors`); ``labelled``: the
    rows of :func:`truthfree_batch`'s ``labelled`` protocol (adds ``effectiveness_picture_only``)."""
    names = world.names
    dims = int(np.prod(world.image_shape))
    nll = mean("tf.nll")
    eff = {f: {r: mean(f"tf.eff.{f}.{r}") for r in names} for f in names}
    rev = {f: mean(f"tf.rev.{f}") for f in names}
    out: dict[str, Any] = {
        "nll_nats": finite_or_none(nll),
        "bits_per_dim": finite_or_none(nll / (dims * math.log(2))),
        "effectiveness": eff,
        "composition_l1": {str(s): mean(f"tf.comp.{s}") for s in (1, steps)},
        "composition_decoder_l1": {str(s): mean(f"tf.comp_dec.{s}") for s in (1, steps)},
        "reversibility_l1": rev,
        "reversibility_l1_mean": float(np.mean(list(rev.values()))),
    }
    if not truth:  # the factor proposal's quality (the true figures have their own: factor accuracy)
        out["proposal"] = {"ess_fraction": mean("tf.prop.ess"), **{f: mean(f"tf.prop.{f}") for f in names}}
    if truth:
        out["effectiveness_truth"] = {f: {r: mean(f"tf.eff_truth.{f}.{r}") for r in names} for f in names}
    if labelled:
        out["effectiveness_picture_only"] = {f: {r: mean(f"tf.eff_pic.{f}.{r}") for r in names} for f in names}
    if exact:
        out["exact"] = {
            f: {
                "l1": mean(f"tf.l1_truth.{f}"),
                "effectiveness_truth": {r: mean(f"tf.eff_truth.{f}.{r}") for r in names},
            }
            for f in exact
        }
    return out


def exact_factors(world, story) -> tuple[str, ...]:
    """The factors whose counterfactual picture a world without a renderer draws exactly: those it
    redraws (``World.redraw``) that no other factor of the story depends on."""
    if world.has_renderer:
        return ()
    return tuple(f for f in world.names if f in world.redraw and not _descendants(story, f))


def redrawn_intervention(interventions: Mapping[str, Any], story) -> str | None:
    """The factor of a single ``do()`` whose counterfactual picture the story's world redraws exactly
    (:func:`exact_factors`), or None: where a world without a renderer has its one true picture."""
    if len(interventions) != 1:
        return None
    (factor,) = interventions
    return factor if factor in exact_factors(story.world, story) else None


def _measures(world) -> dict[str, str]:
    return {f: "mae" if world.factor(f).continuous else "accuracy" for f in world.names}


def targets(world, story, tf: dict, floor: Mapping[str, float]) -> list[dict]:
    """The pass/fail lines of a renderer-less world (issue 24, section 4), for every intervened factor ``f``:
    each continuous factor's counterfactual MAE within :data:`TARGET_RATIO` x its floor; each categorical
    factor ``f`` does not reach kept (read as the evidence's) at least :data:`KEPT`; composition through
    the engine exactly 0."""
    out = []
    descendants = {f: _descendants(story, f) for f in world.names}
    for f in world.names:
        for r in world.names:
            got = tf["effectiveness"][f][r]
            if world.factor(r).continuous:
                limit = TARGET_RATIO * floor[r]
                out.append(
                    {
                        "target": f"under do({f}), {r} MAE <= {TARGET_RATIO} x floor ({limit:.4g})",
                        "value": got,
                        "pass": bool(got <= limit),
                    }
                )
            elif r != f and r not in descendants[f]:
                out.append({"target": f"under do({f}), {r} kept >= {KEPT}", "value": got, "pass": bool(got >= KEPT)})
    comp = tf["composition_l1"]
    value = max(comp.values())
    out.append({"target": "composition through the engine exactly 0", "value": value, "pass": value == 0.0})
    return out


def _descendants(story, factor: str) -> set[str]:
    names = story.world.names
    found: set[str] = set()
    frontier = [factor]
    while frontier:
        cur = frontier.pop()
        for c in names:
            if cur in story.parents(c) and c not in found:
                found.add(c)
                frontier.append(c)
    return found


def evaluate_truthfree(
    mech,
    n: int,
    seed: int,
    samples: int,
    batch: int,
    steps: int,
    progress: bool = True,
    *,
    predictors=None,
    data=None,
) -> dict:
    """:func:`cvaeq.evaluation.evaluate` of a model of a world without a renderer: the truth-free
    figures on the first ``n`` held-out labelled pictures, with their intervals and the targets.

    :param predictors: :class:`~cvaeq.evaluation.predictors.Predictors` (default: cvaeq's, trained
        on the world's training part or read from the cache).
    :param data: ``(train, test)`` as :func:`~cvaeq.evaluation.predictors.training_pictures` gives
        (default: the world's shipped data).
    """
    from .predictors import predictors_for, training_pictures

    story, world = mech.story, mech.story.world
    train, test = data if data is not None else training_pictures(story, PREDICTOR_SEED)
    pred = predictors or predictors_for(story, seed=PREDICTOR_SEED, data=(train, test), progress=progress)
    pictures, labels = np.asarray(test[0]), np.asarray(test[1], dtype=np.float64)
    if n > len(pictures):
        raise DataError(
            f"--n {n}: world {world.name!r} holds out {len(pictures)} labelled pictures; ask for at most that"
        )
    drawn = story.sample(n, np.random.default_rng([seed, 0xD0]))  # the interventions' values, from the story
    do_values = {f: np.asarray(drawn[:, i]) for i, f in enumerate(world.names)}
    rows = _score_pictures(mech, pred, pictures[:n], labels[:n], do_values, samples, seed, batch, steps, progress)
    exact = exact_factors(world, story)

    def figures(mean):
        return truthfree_figures(world, mean, steps, pred.floor, truth=False, exact=exact, labelled=True)

    tf = figures(lambda key: float(np.concatenate(rows[key]).mean()))
    report = {
        "model": mech.name,
        "world": world.name,
        "pixel": world.pixel,
        "renderer": False,
        **{"truth": WHY_NO_TRUTH, "evidence": EVIDENCE, "n": n, "samples": samples, "seed": seed},
        "truthfree": {
            **tf,
            "floor": {f: pred.floor[f] for f in world.names},
            "measure": _measures(world),
            "predictors": _about(pred),
        },
        "targets": targets(world, story, tf, pred.floor),
    }
    out = with_intervals(report, lambda mean: {"truthfree": figures(mean)}, rows, None, seed)
    out["ci"]["truthfree"]["floor"] = {f: pred.floor_ci[f] for f in world.names}
    out["ci_about"]["n_floor"] = pred.floor_n
    return out


def _score_pictures(mech, pred, pictures, labels, do_values, samples, seed, batch, steps, progress) -> dict:
    """``{row key: [per-batch values]}`` of the truth-free figures of the test pictures, batch by batch,
    each batch's random numbers from (seed, its first picture) alone, as for every world."""
    from ..image_model import ImageModelAdapter

    story, world = mech.story, mech.story.world
    model = ImageModelAdapter(mech.image_model, world.image_shape)
    scm = build_scm(story, mech.factor_logits, image_model=model, laws=getattr(mech, "laws", None))
    rows: dict[str, list] = {}

    def add(key, value):
        rows.setdefault(key, []).append(np.asarray(value, dtype=np.float64))

    n = len(pictures)
    kinds = [world.factor(f).continuous for f in world.names]
    for sl in seeded_batches(n, batch, seed, progress):
        x = torch.from_numpy(pictures[sl].copy())
        x = x if world.pixel == "8bit" else x.float()
        factual = np.stack([col if c else col.astype(np.int64) for col, c in zip(labels[sl].T, kinds)], -1)
        do = {f: v[sl] for f, v in do_values.items()}
        seed_ = sub_seed(seed, sl.start)
        truthfree_batch(world, story, scm, model, pred, x, factual, do, samples, seed_, steps, add, labelled=True)
    return rows


def _about(pred) -> dict:
    m = pred.meta
    return {
        "trained_on": m.get("n_train"),
        "held_out": m.get("n_test"),
        "epochs": m.get("epochs"),
        "seed": m.get("seed"),
        "conditioned_on": {f: list(pred.conditions_of(f)) for f in pred.readers},
    }


def proxy_figures(world, mean: Callable[[str], float], steps: int) -> dict:
    """The figures ``--proxies`` adds on a world with a renderer (resampled with the true ones): each
    factor's effectiveness under its own ``do`` read by the predictors on the model's counterfactual
    (``effectiveness``) and on the true one (``effectiveness_truth``), and every truth-free figure."""
    tf = truthfree_figures(world, mean, steps, {}, truth=True)
    return {
        "effectiveness": {f: tf["effectiveness"][f][f] for f in world.names},
        "effectiveness_truth": {f: tf["effectiveness_truth"][f][f] for f in world.names},
        "truthfree": tf,
    }


def add_proxies(report: dict, pred, world) -> dict:
    """``report`` (with its intervals) given the predictors' floor, what they measure and how they were trained."""
    p = report["proxies"]
    p["floor"] = {f: pred.floor[f] for f in world.names}
    p["measure"] = _measures(world)
    p["predictors"] = _about(pred)
    p["about"] = (
        f"predictors trained on {pred.meta.get('n_train')} pictures drawn from the story, "
        f"floor on {pred.floor_n} held out"
    )
    report["ci"]["proxies"]["floor"] = {f: pred.floor_ci[f] for f in world.names}
    report["ci_about"]["n_floor"] = pred.floor_n
    return report
