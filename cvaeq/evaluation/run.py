"""``evaluate``: every score of a trained model against the rendered world.

On ``n`` test images drawn uniformly from the grid (:mod:`.heldout`):

* likelihood: importance-sampled NLL and the negative ELBO, nats per image,
  with ``K = samples`` draws from the proposal q(f | x) q(z | x, f) (the
  engine's abduction weights, :func:`cvaeq.engine.abduct_groups`); the IoU of the thresholded
  reconstruction (argmax q(f | x), mean of q(z | x, f));
* ``factor_accuracy`` of argmax q(factors | x), modulo the classes the world
  draws alike (dSprites: orientation modulo the shape's symmetry);
* ``counterfactual``: per factor, do(factor = a random other class) on each
  image; the model's counterfactual image against the true one
  (:mod:`.truth`): IoU of the thresholded mean images, L1 of the mean images;
  and the axiomatic-soundness scores of Monteiro et al. (2023):
  effectiveness (over every particle's counterfactual world, read by q(f | x)
  and, as ``effectiveness_rendered``, by the renderer: the class whose
  rendered picture is nearest), composition (IoU and L1 after 1 and 10 null
  interventions), reversibility;
* ``tv``: factor-level total variation to the story (:mod:`.tv`).

Every figure carries its 95% bootstrap interval over the test images
(:mod:`.bootstrap`; ``ci`` beside the figures). A world without a renderer
has no truth: it gets the figures of :mod:`.truthfree` only; ``proxies``
adds them beside the true ones on a world with a renderer.

See docs/evaluation.md for the definitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import loading
from ..engine import abduct_groups, group_mean, predict_groups
from ..errors import CheckpointError, CvaeqError
from ..image_model import ImageModelAdapter
from ..loading import LoadedModel, load_model
from ..mechanisms.image import bernoulli_image
from ..scm import build_scm
from ..story import IMAGE, LATENT
from ..walk import Weigh, around, walk
from .bootstrap import with_intervals
from .heldout import draw_heldout, render_float
from .metrics import binarise, factor_correct, given_factor, iou, l1, soft_iou
from .metrics import finite_or_none as _finite
from .streams import STORY_STREAM, seeded_batches
from .streams import sub_seed as _sub
from .truth import counterfactual_of_particles, rendered_effectiveness, story_particles
from .truthfree import PREDICTOR_SEED, PROXY_STREAM, add_proxies, evaluate_truthfree, proxy_figures, truthfree_batch
from .tv import TV_PARTICLES, tv_scores

__all__ = [
    "evaluate",
    "model_to_score",
    "intervention_values",
    "COMPOSITION_STEPS",
    "TRUTH_PARTICLES",
    "SAMPLES",
    "BATCH_PARTICLES",
]

#: Default particles per image: those ``cvaeq query`` answers an image query
#: with (:data:`cvaeq.query.answer.IMAGE_SAMPLES`), so the scores are those
#: of the answer a user gets.
SAMPLES = 100
#: Null interventions applied in a row for the composition score.
COMPOSITION_STEPS = 10
#: Story particles per image defining the true counterfactual image.
TRUTH_PARTICLES = 256
#: Particles per batch of images (``batch = BATCH_PARTICLES // samples`` images;
#: 10 at the default 100 samples): fewer, larger engine calls (each call's
#: per-operation cost is paid once for ten images; 256, two images, before
#: 2026-12-07), and still small enough that an image-sized float32 array of a
#: batch (16 MB) stays in memory the allocator reuses (below its 32 MiB
#: threshold, :mod:`cvaeq.allocator`), rather than fresh pages mapped for every temporary.
BATCH_PARTICLES = 1000
#: The pixel arithmetic of evaluation's image mechanism: float32, as a query's
#: since 2026-12-07 (:class:`~cvaeq.mechanisms.image.BernoulliImage`).
PIXEL_DTYPE = torch.float32


def model_to_score(model: Any = None) -> LoadedModel:
    """The :class:`~cvaeq.loading.LoadedModel` to evaluate, found by :func:`cvaeq.loading.load_model`.

    ``model``: None (the shipped checkpoint), a checkpoint path of any
    registered image-model family, a loaded checkpoint, or
    :class:`~cvaeq.loading.LoadedModel` (a story, fitted tables and any object
    implementing the image-model protocol, :mod:`cvaeq.image_model`). Evaluation
    scores an image model, so a story without one is a CheckpointError.
    """
    mech = model if isinstance(model, LoadedModel) else load_model(model)
    if mech.image_model is None:
        if model is None:
            raise CheckpointError(
                f"no shipped checkpoint under {loading.WEIGHTS}; pass --model CKPT or train one with `cvaeq train`"
            )
        raise CheckpointError("evaluation scores an image model; pass a checkpoint from `cvaeq train`")
    return mech


def intervention_values(factual: np.ndarray, seed: int, world) -> dict[str, np.ndarray]:
    """``{factor: (N,)}`` intervention classes: uniform among the classes other
    than each image's factual one (so every intervention changes something)."""
    rng = np.random.default_rng([seed, 0xC0F])
    out = {}
    for i, (f, size) in enumerate(world.sizes.items()):
        if size < 2:  # a factor with one class cannot be changed: do() sets it to itself
            out[f] = factual[:, i].copy()
            continue
        shift = rng.integers(1, size, size=len(factual))
        out[f] = (factual[:, i] + shift) % size
    return out


def _read(model: ImageModelAdapter, x: torch.Tensor, names) -> np.ndarray:
    """``(N, F)`` argmax classes of q(factors | x), factors ``names`` in order."""
    logits = model.factor_logits(x)
    return torch.stack([logits[f].argmax(-1) for f in names], -1).numpy()


def _given(world, factor: str, classes: np.ndarray) -> np.ndarray | None:
    """Per row, the class of the factor that decides which classes of ``factor`` look alike."""
    g = given_factor(world, factor)
    return None if g is None else classes[:, world.index(g)]


def _mean_image(scm, x: torch.Tensor, k: int, do: dict | None = None) -> tuple[torch.Tensor, Any]:
    """Thresholded mean of ``P(X | do, X = x)`` per image, and the abducted particles."""
    g = abduct_groups(scm, {"X": x}, k)
    out = predict_groups(g, {f: torch.from_numpy(v) for f, v in (do or {}).items()})
    return (group_mean(g, out["X"]) > 0.5).float(), g


class _Scores:
    """Per-image scores collected over batches."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {}

    def add(self, key: str, values) -> None:
        self.rows.setdefault(key, []).append(np.asarray(values, dtype=np.float64))

    def mean(self, key: str) -> float:
        v = np.concatenate(self.rows[key])
        return float(v.mean())


def _factors_and_likelihood(
    mech: LoadedModel, scm, model: ImageModelAdapter, x: torch.Tensor, classes: np.ndarray, k: int, scores: _Scores
):
    """Accuracy of q(factors | x), reconstruction IoU, NLL and -ELBO; returns the particles of x."""
    world = mech.story.world
    read = _read(model, x, world.names)
    for i, f in enumerate(world.names):
        scores.add(f"acc.{f}", factor_correct(world, f, read[:, i], classes[:, i], _given(world, f, classes)))
    loc, _ = model.z_posterior(x, torch.from_numpy(read))
    recon = binarise(model.pixel_probs(torch.from_numpy(read), loc).numpy())
    scores.add("recon_iou", iou(recon, x.numpy()))
    g = abduct_groups(scm, {"X": x}, k)
    scores.add("nll", -g.log_marginal().numpy())
    scores.add("elbo", -g.log_weights.mean(1).numpy())
    with torch.random.fork_rng(devices=[]):  # the scores after this one draw as they did before it existed
        nll_f, elbo_f = _likelihood_given_factors(model, world, x, torch.from_numpy(classes), k)
    scores.add("nll_given_factors", nll_f.numpy())
    scores.add("elbo_given_factors", elbo_f.numpy())
    return g


def _likelihood_given_factors(
    model: ImageModelAdapter, world, x: torch.Tensor, classes: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B]`` importance-sampled ``-log p(x | f)`` and ``-ELBO`` with the true factors ``f``
    and ``K`` draws from q(z | x, f): the conditional VAE's own likelihood, as the seed project (the MLP CVAE
    cvaeq started from) reported it."""
    b = x.shape[0]
    loc, scale = model.encode(x).z_posterior(classes)
    q = torch.distributions.Normal(loc.double(), scale.double())
    z = q.sample((k,))  # [K, B, D]
    prior = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    flat_c = classes.repeat(k, 1)
    image = bernoulli_image(model, factors=world.names, latent=LATENT, shape=world.image_shape)
    # the walk of the image's parents (given: the factors, and Z with its weight
    # log p(z) - log q(z)) and the image, weighed by the SCM's own likelihood
    given = {f: flat_c[:, i] for i, f in enumerate(world.names)} | {
        LATENT: z.reshape(k * b, -1).float(),
        IMAGE: x.repeat(k, 1, 1),
    }
    terms = {LATENT: (prior.log_prob(z) - q.log_prob(z)).sum(-1).reshape(k * b)}
    log_w = walk(around(IMAGE, image), Weigh(given, terms, likelihood=(IMAGE,)), k * b).log_weight.view(k, b)
    nll = -(torch.logsumexp(log_w, 0) - np.log(k))
    return nll, -log_w.mean(0)


def _counterfactuals(
    mech: LoadedModel,
    scm,
    model: ImageModelAdapter,
    g,
    x: torch.Tensor,
    classes: np.ndarray,
    values: dict,
    k: int,
    seed: int,
    truth_particles: int,
    scores: _Scores,
) -> None:
    """Per factor: cf IoU against the truth, effectiveness, reversibility, and their story references.

    The story's noise is abducted once per batch for the truth and once for its
    ``K``-particle ideal, each shared by the factors' interventions (all factors
    are observed, so abduction is exact and prediction draws nothing: a factor's
    truth is what an abduction of its own would give), and once for the story's
    round trips of every factor, stacked."""
    xs = x.numpy()
    n = len(classes)
    rows = torch.arange(n)
    story, world = mech.story, mech.story.world
    truth_noise = story_particles(story, classes, truth_particles, _sub(seed, STORY_STREAM, 0))
    ideal_noise = story_particles(story, classes, k, _sub(seed, STORY_STREAM, 1))
    story_worlds = []
    for i, f in enumerate(world.names):
        v = values[f]
        truth = counterfactual_of_particles(story, truth_noise, {f: v})
        out = predict_groups(g, {f: torch.from_numpy(v)})
        mean = group_mean(g, out["X"]).numpy()
        scores.add(f"cf.{f}", iou(binarise(mean), truth.image))
        scores.add(f"soft.{f}", soft_iou(mean, truth.mean_image))
        scores.add(f"l1.{f}", l1(mean, truth.mean_image))
        # what a perfect model scores with K particles: the story's own K-particle answer
        ideal = counterfactual_of_particles(story, ideal_noise, {f: v})
        scores.add(f"cf_story.{f}", iou(ideal.image, truth.image))
        # effectiveness: every particle's counterfactual world is read (by q, and by the renderer); the weighted
        # share read as asked (the chance that a world drawn from the answer reads right, without drawing one)
        b, kk = out["X"].shape[:2]
        worlds = out["X"].reshape(b * kk, *out["X"].shape[2:]).float()
        got = _read(model, worlds, world.names)[:, i]
        g_f = given_factor(world, f)
        given = None if g_f is None else np.repeat(truth.mode(g_f), kk)
        ok = factor_correct(world, f, got, np.repeat(v, kk), given).reshape(b, kk)
        scores.add(f"eff.{f}", (g.weights.numpy() * ok).sum(1))
        scores.add(f"eff_rendered.{f}", rendered_effectiveness(world, f, out, v, given, g.weights.numpy()))
        # one counterfactual world per image, drawn by weight, and back
        pick = torch.multinomial(g.weights.float(), 1).squeeze(1)
        drawn_image = out["X"][rows, pick].float()
        back, _ = _mean_image(scm, drawn_image, k, {f: classes[:, i]})
        scores.add(f"rev.{f}", iou(back.numpy(), xs))
        # the story's own round trip from one of its counterfactual worlds: the ceiling
        drawn = np.random.default_rng([seed, i]).integers(truth.classes.shape[1], size=n)
        story_worlds.append(truth.classes[np.arange(n), drawn])
    back_noise = story_particles(story, np.concatenate(story_worlds), truth_particles, _sub(seed, STORY_STREAM, 2))
    for i, f in enumerate(world.names):
        story_back = counterfactual_of_particles(story, back_noise.select(i * n, (i + 1) * n), {f: classes[:, i]})
        scores.add(f"rev_story.{f}", iou(story_back.image, xs))


def _decoded(mech: LoadedModel, model: ImageModelAdapter, g) -> torch.Tensor:
    """Thresholded weighted mean of the decoder's probabilities over abducted (factors, Z)."""
    v = g.particles.values
    classes = torch.stack([v[f].long() for f in mech.story.world.names], -1)
    probs = model.pixel_probs(classes, v[LATENT].float())
    return (group_mean(g, probs.reshape(g.groups, g.per_group, *probs.shape[1:])) > 0.5).float()


def _composition(mech: LoadedModel, scm, model: ImageModelAdapter, g, x: torch.Tensor, k: int, scores: _Scores) -> None:
    """The null intervention applied once and COMPOSITION_STEPS times, each result fed back:
    through the engine (pixel noise replayed), and through the decoder alone."""
    cur = x
    for step in range(1, COMPOSITION_STEPS + 1):
        prev = cur
        cur, _ = _mean_image(scm, prev, k)
        if step == 1:
            scores.add("comp.1", iou(cur.numpy(), x.numpy()))
            scores.add("comp_l1.1", l1(cur.numpy(), x.numpy()))
        # A step that returns its input is a fixed point (the rule, pixel noise being
        # replayed exactly): every later step abducts on this same image and replays
        # it, so the chain's end is this image.
        if step == COMPOSITION_STEPS or torch.equal(cur, prev):
            scores.add(f"comp.{COMPOSITION_STEPS}", iou(cur.numpy(), x.numpy()))
            scores.add(f"comp_l1.{COMPOSITION_STEPS}", l1(cur.numpy(), x.numpy()))
            break
    cur = _decoded(mech, model, g)  # step 1 reuses the abduction on x
    scores.add("comp_dec.1", iou(cur.numpy(), x.numpy()))
    scores.add("comp_dec_l1.1", l1(cur.numpy(), x.numpy()))
    for _ in range(2, COMPOSITION_STEPS + 1):  # weights and (factors, Z) only: no pixel noise to draw
        cur = _decoded(mech, model, abduct_groups(scm, {"X": cur}, k, weigh_only=(IMAGE,)))
    scores.add(f"comp_dec.{COMPOSITION_STEPS}", iou(cur.numpy(), x.numpy()))
    scores.add(f"comp_dec_l1.{COMPOSITION_STEPS}", l1(cur.numpy(), x.numpy()))


def _batch(
    mech: LoadedModel,
    scm,
    model: ImageModelAdapter,
    classes: np.ndarray,
    values: dict,
    k: int,
    seed: int,
    truth_particles: int,
    scores: _Scores,
    pred=None,
) -> None:
    x = render_float(classes, mech.story.world)
    g = _factors_and_likelihood(mech, scm, model, x, classes, k, scores)
    _counterfactuals(mech, scm, model, g, x, classes, values, k, seed, truth_particles, scores)
    _composition(mech, scm, model, g, x, k, scores)
    if pred is not None:  # --proxies: the predictors' figures beside the true ones, on their own random stream
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(_sub(seed, PROXY_STREAM))
            truthfree_batch(
                mech.story.world,
                mech.story,
                scm,
                model,
                pred,
                x,
                classes,
                values,
                k,
                seed,
                COMPOSITION_STEPS,
                scores.add,
                g=g,
            )


def _gather(rows: dict[int, dict[str, list]]) -> dict[int, dict[str, list]]:
    """Every process's per-batch score rows, merged (on every process)."""
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, rows)  # between this launch's own processes
    merged: dict[int, dict[str, list]] = {}
    for part in parts:
        merged.update(part)
    return merged


def evaluate(
    model=None,
    n: int = 200,
    seed: int = 0,
    samples: int = SAMPLES,
    *,
    batch: int | None = None,
    truth_particles: int = TRUTH_PARTICLES,
    tv_particles: int = TV_PARTICLES,
    progress: bool = True,
    dist_ctx=None,
    threads: int | None = None,
    proxies: Any = False,
) -> dict | None:
    """Evaluate a model; returns the JSON-ready dict ``cvaeq eval --json`` prints.

    :param model: what :func:`model_to_score` takes: a checkpoint path
        of any image-model family (default: the shipped one), a loaded
        checkpoint, or :class:`~cvaeq.loading.LoadedModel`.
    :param n: test images, uniform over the grid.
    :param seed: seeds the images, the interventions and every particle.
    :param samples: ``K``, particles per image (proposal draws for the NLL,
        particles of every counterfactual).
    :param batch: images per batch (default: :data:`BATCH_PARTICLES` particles per batch); the
        scores depend on it (each batch draws its own random numbers).
    :param truth_particles: story particles per image for the true counterfactual.
    :param tv_particles: particles per counterfactual query of the TV score.
    :param progress: a tqdm bar over the images (stderr).
    :param dist_ctx: a :class:`~cvaeq.model.distributed.DistContext` when run
        as one process of a torchrun launch: the process takes every
        ``world_size``-th batch of images, the scores are gathered, and rank 0
        returns the same dict as one process would (the others return None).
    :param threads: torch's CPU threads for the call (None: as ``cvaeq eval``
        picks them, :mod:`cvaeq.threads`; the caller's count is restored after).
    :param proxies: on a world with a renderer, also the figures that need none
        (:mod:`.truthfree`: cvaeq's anti-causal predictors, trained or read from
        their cache, read the model's and the true counterfactuals), under
        ``"proxies"``. A world without a renderer gets only those, always.
        A :class:`~cvaeq.evaluation.predictors.Predictors` object: those predictors.

    Usage: ``evaluate("model.safetensors", n=200)["counterfactual"]["iou_mean"]``.
    """
    from ..threads import threads_for

    with threads_for(threads):
        return _evaluate(model, n, seed, samples, batch, truth_particles, tv_particles, progress, dist_ctx, proxies)


def _evaluate(
    model, n, seed, samples, batch, truth_particles, tv_particles, progress, dist_ctx, proxies=False
) -> dict | None:
    from ..limits import MAX_EVAL_IMAGES, MAX_PARTICLES, MAX_SEED, MAX_TV_PARTICLES, check_count

    check_count(n, "n", MAX_EVAL_IMAGES)
    check_count(samples, "samples", MAX_PARTICLES)
    check_count(seed, "seed", MAX_SEED, low=0)
    check_count(tv_particles, "tv_particles", MAX_TV_PARTICLES)
    mech = model_to_score(model)
    world = mech.story.world
    if not world.has_renderer:  # no truth: the figures that need none (docs/evaluation.md)
        if dist_ctx is not None and dist_ctx.world_size > 1:
            raise CvaeqError("cvaeq eval of a world without a renderer runs in one process; launch it without torchrun")
        return evaluate_truthfree(
            mech,
            n,
            seed,
            samples,
            batch or max(1, BATCH_PARTICLES // samples),
            COMPOSITION_STEPS,
            progress,
            predictors=_given_predictors(proxies),
        )
    pred = (_given_predictors(proxies) or _predictors(mech, progress)) if proxies else None
    if world.pixel == "8bit":  # pictures of levels: their own scores (docs/evaluation.md)
        return _evaluate_levels(mech, n, seed, samples, batch, truth_particles, tv_particles, progress, dist_ctx, pred)
    batch = batch or max(1, BATCH_PARTICLES // samples)
    rank, world_size = (dist_ctx.rank, dist_ctx.world_size) if dist_ctx is not None else (0, 1)
    starts = list(range(0, n, batch))
    rows = _score_batches(mech, n, seed, samples, batch, truth_particles, starts[rank::world_size], progress, pred)
    if world_size > 1:
        rows = _gather(rows)
        if rank != 0:
            return None
    scores = _Scores()
    for lo in starts:  # in image order, as one process adds them
        for key, values in rows[lo].items():
            scores.rows.setdefault(key, []).extend(values)
    tv = tv_scores(mech.story, mech.factor_logits, num_particles=tv_particles, seed=seed)
    return _report(mech, scores, tv, n, samples, seed, pred)


def _given_predictors(proxies):
    """``proxies`` when it is a :class:`~.predictors.Predictors` object (tests, or predictors trained
    elsewhere), else None (True/False: cvaeq's own, from the cache)."""
    from .predictors import Predictors

    return proxies if isinstance(proxies, Predictors) else None


def _predictors(mech: LoadedModel, progress: bool):
    """cvaeq's anti-causal predictors of the model's world (:mod:`.predictors`): from the cache, else trained."""
    from .predictors import predictors_for

    return predictors_for(mech.story, seed=PREDICTOR_SEED, progress=progress)


def _score_batches(
    mech: LoadedModel,
    n: int,
    seed: int,
    samples: int,
    batch: int,
    truth_particles: int,
    mine: list[int],
    progress: bool,
    pred=None,
) -> dict[int, dict[str, list]]:
    """``{first image: score rows}`` of the batches starting at ``mine``."""
    world = mech.story.world
    # one adapter for this call: its decoder chain's mean image reuses what the abduction just decoded
    model = ImageModelAdapter(mech.image_model, world.image_shape, pixel_dtype=PIXEL_DTYPE, repeat_last_decode=True)
    scm = build_scm(mech.story, mech.factor_logits, image_model=model)
    classes = draw_heldout(n, seed, mech.story)
    values = intervention_values(classes, seed, world)
    rows: dict[int, dict[str, list]] = {}
    # every batch's random numbers come from (seed, its first image) alone, so a
    # batch gives the same scores whichever process of a torchrun launch runs it
    for sl in seeded_batches(n, batch, seed, progress, mine):
        lo = sl.start
        part = _Scores()
        _batch(
            mech,
            scm,
            model,
            classes[sl],
            {f: v[sl] for f, v in values.items()},
            samples,
            _sub(seed, lo),
            truth_particles,
            part,
            pred,
        )
        rows[lo] = part.rows
    return rows


def _figures(names, mean) -> dict:
    """The figures of :func:`evaluate` (every float of its JSON but the TV), from ``mean(key)``:
    the mean over test images of a score row (called again per bootstrap resample, :mod:`.bootstrap`)."""
    steps = (1, COMPOSITION_STEPS)

    def per(prefix: str) -> dict[str, float]:
        return {f: mean(f"{prefix}.{f}") for f in names}

    def mean_of(d: dict) -> float:
        return float(np.mean(list(d.values())))

    cf_iou, soft, l1_truth = per("cf"), per("soft"), per("l1")
    ideal, rev = per("cf_story"), per("rev")
    return {
        "nll_nats": _finite(mean("nll")),
        "elbo_nats": _finite(mean("elbo")),
        "nll_given_factors_nats": _finite(mean("nll_given_factors")),
        "elbo_given_factors_nats": _finite(mean("elbo_given_factors")),
        "recon_iou": mean("recon_iou"),
        "factor_accuracy": per("acc"),
        "counterfactual": {
            "iou": cf_iou,
            "iou_mean": mean_of(cf_iou),
            "iou_story": ideal,
            "iou_story_mean": mean_of(ideal),
            "soft_iou": soft,
            "soft_iou_mean": mean_of(soft),
            "l1_truth": l1_truth,
            "l1_truth_mean": mean_of(l1_truth),
            "effectiveness": per("eff"),
            "effectiveness_rendered": per("eff_rendered"),
            "composition": {str(s): mean(f"comp.{s}") for s in steps},
            "composition_decoder": {str(s): mean(f"comp_dec.{s}") for s in steps},
            "composition_l1": {str(s): mean(f"comp_l1.{s}") for s in steps},
            "composition_decoder_l1": {str(s): mean(f"comp_dec_l1.{s}") for s in steps},
            "reversibility": mean_of(rev),
            "reversibility_by_factor": rev,
            "reversibility_story": per("rev_story"),
        },
    }


def _report(mech: LoadedModel, scores: _Scores, tv: dict, n: int, samples: int, seed: int, pred=None) -> dict:
    """The JSON-ready dict of :func:`evaluate` from the gathered scores, with every figure's interval."""
    world = mech.story.world
    names = world.names

    def figures(mean) -> dict:
        out = _figures(names, mean)
        if pred is not None:
            out["proxies"] = proxy_figures(world, mean, COMPOSITION_STEPS)
        return out

    out = {
        "model": mech.name,
        "world": mech.story.world.name,
        "n": n,
        "samples": samples,
        "seed": seed,
        **figures(scores.mean),
        "tv": {
            "interventional": tv["interventional"],
            "counterfactual": tv["counterfactual"],
            "queries": len(tv["queries"]),
        },
    }
    out = with_intervals(out, figures, scores.rows, tv, seed)
    return out if pred is None else add_proxies(out, pred, world)


def _evaluate_levels(
    mech, n, seed, samples, batch, truth_particles, tv_particles, progress, dist_ctx, pred=None
) -> dict:
    """:func:`evaluate` of a model of an 8-bit world (:mod:`.eightbit`), on the same test images and interventions."""
    from ..errors import CvaeqError
    from .eightbit import evaluate_levels

    if dist_ctx is not None and dist_ctx.world_size > 1:
        raise CvaeqError("cvaeq eval of an 8-bit world runs in one process; launch it without torchrun")
    scm = build_scm(mech.story, mech.factor_logits, image_model=mech.image_model)
    classes = draw_heldout(n, seed, mech.story)
    values = intervention_values(classes, seed, mech.story.world)
    return evaluate_levels(
        mech,
        scm,
        classes,
        values,
        samples,
        seed,
        batch or max(1, BATCH_PARTICLES // samples),
        truth_particles,
        tv_particles,
        progress,
        COMPOSITION_STEPS,
        pred,
    )
