"""The true counterfactual of a rendered image, from the story itself.

The factual factors of a test image are known (they were drawn). The story,
read as an SCM with Gumbel-max mechanisms (:func:`cvaeq.scm.scm_from_story`),
gives the counterfactual the usual way: abduct the story's Gumbel noise given
all five factual factors (exact), apply the same ``do``, predict the factors.
Factors that are not descendants of the intervened one keep their factual
values; descendants get a *distribution* of counterfactual values, because
the abducted noise has a posterior, not a single value.

The true counterfactual image is therefore defined like the model's answer
(:meth:`cvaeq.engine.Result.mean_image`, thresholded): the mean over the
story's counterfactual particles of the rendered images, thresholded at 0.5
(the pixels that are on in more than half of the counterfactual worlds). A
perfect model gets IoU 1 against it; comparing per particle instead would
charge even a perfect model for the counterfactual's inherent randomness.

The renderer also reads pictures: :func:`nearest_rendered` gives the class
of a factor whose rendered picture is nearest to a model's counterfactual
picture (``effectiveness_rendered``), a reading no learned classifier stands in.

A world without a renderer (``morphomnist``: real labelled pictures) has no
true counterfactual picture; every function here that renders one raises a
:class:`~cvaeq.errors.DataError` saying so (:func:`cvaeq.data.labelled.no_truth`).

>>> import numpy as np
>>> from cvaeq.story import load_story
>>> story = load_story()
>>> f = np.array([[0, 5, 3, 4, 20]])
>>> t = true_counterfactual(story, f, "orientation", np.array([10]), num_particles=8, seed=0)
>>> t.classes[0, :, 2].tolist() == [10] * 8, bool((t.classes[0, :, [0, 1, 3, 4]] == [[0], [5], [4], [20]]).all())
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..engine import GroupParticles, abduct_groups, predict_groups
from ..errors import QueryError
from ..scm import build_scm
from ..world import World
from .metrics import THRESHOLD, factor_correct

__all__ = [
    "TrueCounterfactual",
    "true_counterfactual_for",
    "true_counterfactual",
    "true_counterfactual_of",
    "story_particles",
    "counterfactual_of_particles",
    "render_unique",
    "nearest_rendered",
    "rendered_effectiveness",
]


@dataclass(frozen=True)
class TrueCounterfactual:
    """The story's counterfactual of ``N`` factual worlds under one ``do``.

    :ivar classes: ``(N, P, F)`` counterfactual factor classes, one row per particle.
    :ivar mean_image: ``(N, H, W)`` float mean of the particles' rendered images.
    :ivar image: ``(N, H, W)`` bool, ``mean_image > 0.5``.
    :ivar world: the world the classes are of.
    """

    classes: np.ndarray
    mean_image: np.ndarray
    image: np.ndarray
    world: World = field(repr=False)

    def mode(self, factor: str) -> np.ndarray:
        """``(N,)`` the most frequent counterfactual class of ``factor`` per world."""
        col = self.classes[:, :, self.world.index(factor)]
        counts = (col[:, :, None] == np.arange(self.world.sizes[factor])).sum(1)
        return counts.argmax(1)


def _truth_exists(world: World) -> None:
    """A DataError saying plainly that ``world`` has no true counterfactual, if it has no renderer."""
    from ..data.renderless import require_renderer

    require_renderer(world, "no true counterfactual")


def render_unique(world: World, classes: np.ndarray) -> np.ndarray:
    """Render ``(M, F)`` classes, each distinct grid image once: ``(M, H, W)`` uint8."""
    images, inverse = _distinct_renders(world, classes)
    return images[inverse]


def _distinct_renders(world: World, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U, H, W)`` the distinct grid images of ``(M, F)`` classes, each rendered
    once, and ``(M,)`` which of them each row is."""
    _truth_exists(world)
    _, first, inverse = np.unique(world.indices_of(classes), return_index=True, return_inverse=True)
    return world.render_checked(classes[first]), inverse.reshape(-1)


def nearest_rendered(world: World, pictures: np.ndarray, factors: np.ndarray, factor: str) -> np.ndarray:
    """``(N,)`` the class of ``factor`` that the renderer reads each picture as: the one whose
    rendered picture, every other factor at the picture's own value in ``factors``, is nearest.

    The reading of a world with a renderer, where no classifier is needed: ``pictures`` ``(N,
    *image_shape)`` uint8 (a model's counterfactual pictures) and ``factors`` ``(N, F)`` (the
    classes each was drawn at, e.g. a particle's counterfactual factors). Each picture is compared
    with the world's picture at every class of ``factor``, the others held at its row of
    ``factors``, by the sum of squared level differences over every pixel and channel (whole
    numbers, exact in float64 in any order of summation, so the same on every CPU). A tie goes to
    the lower class (look-alike classes draw the same picture: compare modulo them,
    :func:`~cvaeq.evaluation.metrics.factor_correct`). Each
    distinct picture of the world is rendered once.

    >>> from cvaeq.world import get_world
    >>> world = get_world("colour_pendulum")
    >>> truth = np.array([[3, 10, 2, 5], [3, 10, 6, 5]])
    >>> pictures = world.render_checked(truth)
    >>> nearest_rendered(world, pictures, np.array([[3, 10, 0, 5]] * 2), "shadow_length").tolist()
    [2, 6]
    """
    _truth_exists(world)
    pictures = np.asarray(pictures)
    if pictures.dtype != np.uint8 or pictures.shape[1:] != tuple(world.image_shape) or len(pictures) != len(factors):
        raise ValueError(
            f"nearest_rendered needs uint8 pictures (N, {', '.join(map(str, world.image_shape))}) with a row of "
            f"factors each; got {pictures.dtype} {pictures.shape} and {len(factors)} rows"
        )
    col, size = world.index(factor), world.sizes[factor]
    others = np.array(factors, dtype=np.int64, copy=True)
    others[:, col] = 0
    keys, inverse = np.unique(world.indices_of(others), return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    starts = np.searchsorted(inverse.reshape(-1)[order], np.arange(len(keys) + 1))
    got = np.empty(len(pictures), dtype=np.int64)
    flat = pictures.reshape(len(pictures), -1)
    per_chunk = max(1, _READ_CHUNK // size)  # keys rendered at once: memory bounded whatever the particles
    for first in range(0, len(keys), per_chunk):
        chunk = keys[first : first + per_chunk]
        candidates = np.repeat(world.classes_array_of(chunk), size, 0)
        candidates[:, col] = np.tile(np.arange(size), len(chunk))
        rendered = render_unique(world, candidates).reshape(len(chunk), size, -1)
        for j in range(len(chunk)):
            # |x - r|^2 = |x|^2 - 2 x.r + |r|^2 (|x|^2 is the same for every candidate): integers below
            # 2^53 (255^2 per pixel and channel), so float64 products and sums are exact in any order
            theirs = rendered[j].astype(np.float64)
            norms = (theirs * theirs).sum(1)
            rows = order[starts[first + j] : starts[first + j + 1]]
            for at in range(0, len(rows), _READ_CHUNK):
                some = rows[at : at + _READ_CHUNK]
                got[some] = (norms - 2.0 * (flat[some].astype(np.float64) @ theirs.T)).argmin(1)
    return got


#: Pictures rendered, or read, at once by :func:`nearest_rendered`.
_READ_CHUNK = 512


def rendered_effectiveness(world: World, factor: str, out: Mapping[str, Any], target, given, weights) -> np.ndarray:
    """``(B,)`` per evidence picture, the weight of its particles whose counterfactual picture the
    renderer reads as ``target`` (:func:`nearest_rendered`; modulo look-alike classes given ``given``,
    :func:`~cvaeq.evaluation.metrics.factor_correct`): ``counterfactual.effectiveness_rendered``.

    ``out`` is a prediction's ``{site: [B, K, ...]}`` (its ``X`` the pictures, every factor the classes
    each particle was drawn at), ``target`` ``(B,)`` the intervened classes, ``given`` ``(B K,)`` or
    None, ``weights`` ``(B, K)`` the particles' normalised weights."""
    b, k = out["X"].shape[:2]
    drawn_at = torch.stack([out[c].reshape(b * k).long() for c in world.names], -1).numpy()
    pictures = out["X"].reshape(b * k, *out["X"].shape[2:]).to(torch.uint8).numpy()
    ok = factor_correct(world, factor, nearest_rendered(world, pictures, drawn_at, factor), np.repeat(target, k), given)
    return (np.asarray(weights) * ok.reshape(b, k)).sum(1)


def true_counterfactual_for(do, factual, story="default", particles: int = 256, seed: int = 0) -> TrueCounterfactual:
    """The true counterfactual of one factual world: what the story itself says
    the world would have been under ``do`` (``cvaeq.true_counterfactual_for``).

    It answers, from the story and the world's renderer, the question the
    model answers with ``ask("P(X | do(...), X=img)", image=factual)``: abduct
    the story's noise given every factual factor, apply ``do``, predict the
    factors of ``particles`` counterfactual worlds and render them; the true
    counterfactual picture is their pixelwise majority (docs/evaluation.md,
    "Ground truth"). Compare the model's ``answer.mean_image > 0.5`` with
    ``.image[0]`` (:func:`cvaeq.evaluation.iou`).

    :param do: the intervention: ``"shape=square"`` (several as
        ``"shape=square,scale=1"``) or a mapping ``{"shape": "square"}``;
        values as written in queries (a label or a number on the grid).
    :param factual: every factor of the factual world: ``"shape=heart,
        scale=1,orientation=0,posX=0.5,posY=0.5"`` (as ``--image`` takes
        factors) or a mapping.
    :param story: a story (name, path or object); its world reads the values.
    :param particles: counterfactual worlds drawn (descendants of the
        intervened factors get a distribution, non-descendants keep their
        factual values).
    :param seed: seeds the abducted noise (torch's global generator is not touched).
    :returns: a :class:`TrueCounterfactual` of one world: ``classes`` ``(1,
        particles, F)``, ``mean_image`` and ``image`` ``(1, H, W)``,
        ``mode(factor)``.

    >>> t = true_counterfactual_for("shape=square", "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5",
    ...                             particles=64)
    >>> t.image.shape, t.world.label("shape", t.mode("shape")[0])
    ((1, 64, 64), 'square')
    >>> bool(t.mode("posX")[0] == t.world.parse_value("posX", "0.5"))  # a non-descendant keeps its factual value
    True
    """
    from ..limits import MAX_PARTICLES, MAX_SEED, check_count
    from ..story import Story, load_story

    story = story if isinstance(story, Story) else load_story(story)
    world = story.world
    _truth_exists(world)
    check_count(particles, "particles", MAX_PARTICLES, error=QueryError)
    check_count(seed, "seed", MAX_SEED, low=0, error=QueryError)
    facts = _classes(world, factual, "factual", every=True)
    interventions = _classes(world, do, "do", every=False)
    if not interventions:
        raise QueryError('do names no factor; write e.g. do="shape=square"')
    return true_counterfactual_of(
        story, world.row(facts), {f: np.array([c]) for f, c in interventions.items()}, particles, seed
    )


def _classes(world: World, spec, what: str, every: bool) -> dict[str, int]:
    """``{factor: class}`` of ``"a=v,b=w"`` text or a mapping; all factors when ``every``."""
    if isinstance(spec, str):
        items = [item for item in spec.split(",") if item.strip()]
    elif isinstance(spec, Mapping):
        items = [f"{k}={v}" for k, v in spec.items()]
    else:
        raise QueryError(f'{what} must be text such as "shape=square" or a mapping, not {type(spec).__name__}')
    if every:
        return world.parse_factors(items)
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise QueryError(f"{what}: expected name=value, got {item!r}")
        if name.strip() in out:
            raise QueryError(f"{what}: factor {name.strip()!r} given twice")
        out[name.strip()] = world.parse_value(name.strip(), value)
    return out


def true_counterfactual(
    story, factual: np.ndarray, factor: str, values: np.ndarray, num_particles: int = 128, seed: int = 0
) -> TrueCounterfactual:
    """The story's counterfactual of each factual world under ``do(factor = values[i])``.

    :param story: the :class:`~cvaeq.story.Story` (ground truth).
    :param factual: ``(N, F)`` factual classes (the world's factor order).
    :param factor: the intervened factor.
    :param values: ``(N,)`` intervention classes, one per world.
    :param num_particles: ``P``, counterfactual particles per world.
    :param seed: seed of the abducted noise (torch's RNG is forked, not touched).
    """
    return true_counterfactual_of(story, factual, {factor: values}, num_particles, seed)


def true_counterfactual_of(
    story, factual: np.ndarray, interventions: Mapping[str, np.ndarray], num_particles: int = 128, seed: int = 0
) -> TrueCounterfactual:
    """:func:`true_counterfactual` under several interventions at once:
    ``do(f = interventions[f][i] for each f)`` in world ``i`` (what a query's
    ``do(a=..., b=...)`` asks; the web explorer shows it beside the model's answer)."""
    return counterfactual_of_particles(story, story_particles(story, factual, num_particles, seed), interventions)


def story_particles(story, factual: np.ndarray, num_particles: int = 128, seed: int = 0) -> GroupParticles:
    """The story's noise abducted from ``N`` factual worlds (every factor
    observed: exact), ``P = num_particles`` particles each, with torch's RNG
    forked and seeded by ``seed``. One abduction serves every intervention
    asked of the same worlds (:func:`counterfactual_of_particles`): evaluation
    asks five of each test image."""
    world = story.world
    factual = np.asarray(factual, dtype=np.int64)
    if factual.ndim != 2 or factual.shape[1] != len(world.names):
        raise ValueError(f"factual classes of shape {factual.shape}; expected (N, {len(world.names)})")
    scm = build_scm(story)  # the story's factor-level SCM (well under a millisecond to build)
    evidence = {f: torch.from_numpy(factual[:, i].copy()) for i, f in enumerate(world.names)}
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only, as in engine.infer
        return abduct_groups(scm, evidence, num_particles)


def counterfactual_of_particles(
    story, g: GroupParticles, interventions: Mapping[str, np.ndarray]
) -> TrueCounterfactual:
    """The :class:`TrueCounterfactual` of the worlds whose noise ``g`` holds
    (:func:`story_particles`) under ``do(f = interventions[f][i])`` in world ``i``.
    Prediction draws no random numbers: the same particles give each
    intervention the answer a fresh abduction with the same seed would."""
    world = story.world
    names = world.names
    do: dict[str, torch.Tensor] = {}
    for factor, values in interventions.items():
        values = np.asarray(values, dtype=np.int64)
        if factor not in names:
            raise QueryError(f"do() on unknown factor {factor!r}; known: {', '.join(names)}")
        if len(values) != g.groups:
            raise ValueError(f"{len(values)} intervention values for {g.groups} worlds")
        do[factor] = torch.from_numpy(values.copy())
    out = predict_groups(g, do)
    classes = torch.stack([out[f] for f in names], -1).numpy().astype(np.int64)
    n, p = classes.shape[:2]
    mean = _mean_rendered(world, classes.reshape(n * p, len(names)), n, p)
    return TrueCounterfactual(classes=classes, mean_image=mean, image=mean > THRESHOLD, world=world)


def _mean_rendered(world: World, classes: np.ndarray, n: int, p: int) -> np.ndarray:
    """``(n, H, W)`` float64 mean over each world's ``p`` particles (rows of
    ``classes``, world by world) of their rendered images: each distinct image
    rendered once and weighted by its count, rather than ``n p`` images
    stacked. The sums are of whole numbers (a renderer draws uint8 pixels),
    exact in float64 in any order, so the mean is that of the stacked images
    to the bit."""
    images, inverse = _distinct_renders(world, classes)
    images = images.reshape(len(images), -1)
    counts = np.zeros((n, len(images)), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(n), p), inverse), 1.0)
    return (counts @ images.astype(np.float64) / p).reshape(n, *world.image_shape)
