"""Answering queries: text (or a resolved query) in, an :class:`Answer` out.

:func:`ask` is what ``cvaeq query`` runs and what Python users call: it picks
the model, reads the image, parses and resolves the query, runs the engine
(:func:`cvaeq.engine.infer_scenarios`: every target a variable in its
scenario; a query without ``@`` has them all in one) and summarises the
weighted samples, with its ``rung`` (:mod:`cvaeq.rung`):

* factor targets of ``P(...)``: ``distribution`` ``{target: {value: p}}``, one
  marginal per target, values written as in the query language;
* the target of ``E[...]``: ``expectation`` ``{target: number}``;
* a continuous target of ``P(...)`` (``P(intensity | do(thickness=4))``):
  its weighted ``quantiles`` ``{target: {"5%": v, "25%": ..., "95%": ...}}``,
  its ``histogram`` ``{target: {"edges": [...], "probabilities": [...]}}``
  and its mean in ``expectation``;
* ``X``: the evidence image (if any), sampled images, their mean image and the
  factors q(factors | X) reads off that mean (``predicted``); written as PNGs
  by :meth:`Answer.save_images` (``ask(out=...)`` does it);
* ``Z``: per-dimension weighted ``mean`` and ``sd``;
* a query about several worlds (``scale @ do(shape=square)``, docs/queries.md):
  the same, keyed by each target's text, so ``distribution`` carries one
  distribution per (variable, world) — ``{"scale": ..., "scale @
  do(shape=square)": ...}`` — and the keys of a one-world query stay its bare
  names; events give ``probability`` (one number, e.g. PN), and
  ``E[a - b]`` gives ``expectation`` ``{"a - b": number}``.

:func:`answer_query` does the same for a :class:`~cvaeq.query.ResolvedQuery`
and :class:`Mechanisms` already in hand (it builds the SCM, with the image
node only when the query involves X or Z, and calls the engine).

Where the mechanisms come from (:func:`load_mechanisms`): a checkpoint
(``model=``; its story and fitted factor tables, its decoder as the image
mechanism), else the shipped checkpoint if installed, else — or when
``story=`` is given — the story's true tables with no image model (factor
queries; ground truth). A query about the image with ``story=`` alone uses
the checkpoint shipped for that story, if any (:func:`shipped_checkpoint`).

>>> a = ask("P(shape | do(scale=1))", story="default", samples=2000, seed=0)
>>> a.rung, a.samples, a.ess
('interventional', 2000, 2000.0)
>>> ask("P(shape)", story="default", samples=10, seed=0).rung
'observational'
>>> sorted(a.distribution["shape"])
['ellipse', 'heart', 'square']
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..allocator import release_freed_memory
from ..engine import Result, infer_scenarios
from ..errors import QueryError
from ..limits import check_question_cost
from ..loading import Mechanisms, load_mechanisms, shipped_checkpoint
from ..rung import Rung, scenario_key
from ..story import IMAGE, LATENT, Story
from .parser import parse
from .resolution import ResolvedQuery, resolve

__all__ = [
    "Answer",
    "ask",
    "answer_query",
    "question_scm",
    "question_work",
    "image_target",
    "load_mechanisms",
    "Mechanisms",
    "read_factors",
    "shipped_checkpoint",
    "DEFAULT_SAMPLES",
    "IMAGE_SAMPLES",
    "MAX_IMAGE_SAMPLES",
    "MAX_SAMPLES",
    "GRID_IMAGES",
    "NEEDS_MODEL",
    "LOW_ESS",
    "LOW_ESS_FRACTION",
    "evidence_warnings",
]

#: Particles for queries whose targets are factors or Z.
DEFAULT_SAMPLES = 1000
#: Particles when X is a target (each particle decodes an image).
IMAGE_SAMPLES = 100
#: At most this many particles when the image is a target or the evidence.
MAX_IMAGE_SAMPLES = 10_000
#: At most this many particles for any query (memory grows with them).
MAX_SAMPLES = 1_000_000
#: A question estimated to take more memory than this (cvaeq.limits.question_cost)
#: hands its freed buffers back to the system when it ends (a few milliseconds;
#: smaller ones keep them for the next, :mod:`cvaeq.allocator`).
RELEASE_ABOVE_BYTES = 256 << 20
#: Sampled images in the grid PNG (8 per row).
GRID_IMAGES = 64
#: The file names written by :meth:`Answer.save_images`.
IMAGE_FILES = {"evidence": "evidence.png", "samples": "samples.png", "mean": "mean.png"}
#: Decimals kept in probabilities, expectations and Z statistics (float sums leave noise beyond).
DIGITS = 10
NEEDS_MODEL = "this query needs a trained model: pass --model CKPT or run cvaeq train"
#: An answer whose effective sample size is below ``max(LOW_ESS, LOW_ESS_FRACTION * samples)``
#: (and below half the particles) carries a warning: the evidence is hard for the model to explain.
LOW_ESS = 10
LOW_ESS_FRACTION = 0.05


def evidence_warnings(ess: float, samples: int, has_evidence: bool) -> tuple[str, ...]:
    """The warnings of an answer whose evidence the model cannot explain.

    The effective sample size says on how many particles the answer rests.
    Evidence the model never produces (a noise picture, a stray blob its
    decoder never drew, factor evidence the tables make rare) leaves a few
    particles, or one, with all the weight: the answer is then a guess,
    whatever its probabilities look like. Below ``max(LOW_ESS,
    LOW_ESS_FRACTION * samples)`` (and below half the particles, for tiny
    ``samples``) the answer says so.

    >>> evidence_warnings(1.6, 100, True)[0][:60]
    'the model can hardly explain the evidence: ESS 1.6 of 100 pa'
    >>> evidence_warnings(9.996, 100, True)[0][43:79]   # as many digits as show it below the bound
    'ESS 9.996 of 100 particles (below 10'
    >>> evidence_warnings(83.3, 100, True), evidence_warnings(1.0, 1, True)
    ((), ())
    """
    threshold = min(max(LOW_ESS, LOW_ESS_FRACTION * samples), 0.5 * samples)
    if not has_evidence or not ess < threshold:
        return ()
    shown = next(text for d in range(1, 7) if float(text := f"{ess:.{d}f}") < threshold or d == 6)
    return (
        f"the model can hardly explain the evidence: ESS {shown} of {samples} particles "
        f"(below {threshold:g}), so the answer rests on about {max(1, round(ess))} of them; "
        "check the evidence (a picture the model never draws, such as a stray mark or noise, or factor values "
        "it makes rare) or ask with more samples",
    )


def read_factors(image_model: Any, image, world) -> dict[str, str]:
    """The factors q(factors | X) reads off an image: ``{factor: value label}``
    in ``world``'s order and labels (a continuous factor: the mean of its
    ``factor_normals``).

    In a binary world a grey image (a mean) is first thresholded at 1/2, as
    the encoder reads black-and-white images; in an 8-bit world the encoder
    reads it on the [0, 1] scale (uint8 levels are divided by 255).
    """
    a = np.asarray(image)
    x = torch.as_tensor(a, dtype=torch.float32)
    if getattr(world, "pixel", "binary") == "8bit":
        x = (x / 255 if a.dtype == np.uint8 else x).reshape(1, *world.image_shape)
    else:
        x = (x > 0.5).float().reshape(1, *x.shape[-2:])
    with torch.no_grad():
        logits = image_model.factor_logits(x)
        normals = image_model.factor_normals(x) if world.continuous else {}
    return {
        f: world.label(f, float(normals[f][0][0]) if f in world.continuous else int(torch.argmax(logits[f][0])))
        for f in world.names
    }


@dataclass(frozen=True)
class Answer:
    """The answer to one query; :meth:`to_json` and :meth:`to_table` print it.

    :ivar query: the canonical query text.
    :ivar rung: ``"observational"``, ``"interventional"`` or ``"counterfactual"``
        (:func:`cvaeq.rung.rung`; ``kind`` is its former name).
    :ivar targets: the targets, as asked.
    :ivar samples: the number of particles.
    :ivar ess: the effective sample size of the abduction (``samples`` when
        there is no evidence; small means the evidence was hard to explain).
    :ivar distribution: ``{factor: {value label: probability}}`` for the
        factor targets of ``P(...)`` (each target's marginal).
    :ivar expectation: ``{factor: mean value}`` for ``E[...]`` (the key of
        a difference is its text, ``"a - b"``).
    :ivar probability: for a query whose targets are events (PN, PS, PNS,
        interval events such as ``intensity > 200``): the probability that
        they all hold; else None.
    :ivar quantiles: ``{target: {"5%": value, ...}}`` for the continuous
        targets of ``P(...)``: the weighted quantiles at
        :data:`~cvaeq.engine.counterfactual.QUANTILES` (the inverse of the
        weighted empirical CDF, :meth:`~cvaeq.engine.Result.quantiles`).
    :ivar histogram: ``{target: {"edges": [...], "probabilities": [...]}}``
        for the same targets: equal bins from the least to the greatest
        value (:meth:`~cvaeq.engine.Result.histogram`).
    :ivar latent: ``{"Z": {"mean": [...], "sd": [...]}}`` when Z is a target.
    :ivar evidence_image, sample_images, mean_image: arrays when X is a target
        (binary world: ``(64, 64)`` 0/1, ``(n, 64, 64)`` 0/1, ``(64, 64)``
        probabilities; 8-bit world: uint8 levels ``image_shape`` and ``(n,
        *image_shape)``, and the mean on the [0, 1] scale).
    :ivar pixel: the world's pixel kind, ``"binary"`` or ``"8bit"``
        (:meth:`pictures` gives every picture on the [0, 1] scale).
    :ivar predicted: the factors q(factors | X) reads off the mean image.
    :ivar images: ``{"evidence", "samples", "mean"}`` → PNG paths, once written.
    :ivar model: the checkpoint used, or None for the story's true tables.
    :ivar story: the story's name.
    :ivar result: the engine's :class:`~cvaeq.engine.Result` (weighted samples).
    :ivar warnings: what makes the answer untrustworthy, one line each (see
        :func:`evidence_warnings`); empty when nothing does.
    :ivar truth_note: for a counterfactual picture of a world without a
        renderer, the sentence saying it has no true counterfactual
        (:func:`cvaeq.data.renderless.no_truth`); else None.
    """

    query: str
    rung: Rung
    targets: tuple[str, ...]
    samples: int
    ess: float
    distribution: dict[str, dict[str, float]] = field(default_factory=dict)
    expectation: dict[str, float] = field(default_factory=dict)
    probability: float | None = None
    quantiles: dict[str, dict[str, float]] = field(default_factory=dict)
    histogram: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    latent: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    evidence_image: np.ndarray | None = field(default=None, repr=False)
    sample_images: np.ndarray | None = field(default=None, repr=False)
    mean_image: np.ndarray | None = field(default=None, repr=False)
    predicted: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    story: str = "default"
    result: Result | None = field(default=None, repr=False, compare=False)
    warnings: tuple[str, ...] = ()
    pixel: str = "binary"
    truth_note: str | None = None

    def pictures(self) -> dict[str, np.ndarray]:
        """``{"evidence", "samples", "mean"}`` → the pictures of an X answer on the
        [0, 1] scale (8-bit levels divided by 255), those the answer has; what
        the PNGs, the notebook and the explorer show."""
        from ..viz import unit

        shown = {"evidence": self.evidence_image, "samples": self.sample_images, "mean": self.mean_image}
        return {k: unit(v, self.pixel) for k, v in shown.items() if v is not None}

    @property
    def kind(self) -> Rung:
        """The former name of :attr:`rung`."""
        return self.rung

    def save_images(self, out: str | os.PathLike) -> Answer:
        """Write the pictures of an X answer into the folder ``out``; returns the
        answer with their paths in ``images``. Each file is written atomically
        and only after the whole answer was computed."""
        if self.mean_image is None:
            raise QueryError(f"{self.query} has no image target: there are no pictures to write")
        from ..viz import save_grid, save_image

        out = _checked_out(out)
        pictures = self.pictures()
        paths: dict[str, str] = {}
        if "evidence" in pictures:
            paths["evidence"] = str(save_image(pictures["evidence"], out / IMAGE_FILES["evidence"]))
        paths["samples"] = str(save_grid(pictures["samples"], out / IMAGE_FILES["samples"]))
        paths["mean"] = str(save_image(pictures["mean"], out / IMAGE_FILES["mean"]))
        return replace(self, images=paths)

    def to_dict(self) -> dict[str, Any]:
        """The answer as plain JSON-ready data (see :meth:`to_json`)."""
        d: dict[str, Any] = {"query": self.query, "rung": self.rung}
        if self.distribution:
            d["distribution"] = self.distribution
        if self.expectation:
            d["expectation"] = self.expectation
        if self.probability is not None:
            d["probability"] = self.probability
        if self.quantiles:
            d["quantiles"] = self.quantiles
            d["histogram"] = self.histogram
        if self.latent:
            d["mean"] = {t: v["mean"] for t, v in self.latent.items()}
            d["sd"] = {t: v["sd"] for t, v in self.latent.items()}
        if image_target(self.targets):
            d["images"] = dict(self.images) or None
            d["predicted"] = self.predicted
        d["samples"] = self.samples
        d["ess"] = self.ess
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.truth_note:
            d["truth_note"] = self.truth_note
        d["model"] = self.model
        d["story"] = self.story
        return d

    def to_json(self, indent: int | None = 2) -> str:
        """One JSON object: ``query``, ``rung``, ``distribution`` / ``expectation``
        / ``quantiles`` and ``histogram`` (continuous targets) / ``mean`` and ``sd``
        / ``images`` and ``predicted``, ``samples``, ``ess``,
        ``model``, ``story``; and ``warnings`` (a list of lines) when the
        answer has any, ``truth_note`` when it has no true counterfactual."""
        return json.dumps(self.to_dict(), indent=indent)

    def _repr_html_(self) -> str:
        """How a notebook shows the answer: pictures and tables (:func:`cvaeq.display.answer_html`)."""
        from ..display import answer_html

        return answer_html(self)

    def _repr_png_(self) -> bytes | None:
        """The sample grid of an image answer, for front ends without HTML (None otherwise)."""
        from ..display import answer_png

        return answer_png(self)

    def to_table(self) -> str:
        """A readable text answer: a probability table with bars per factor target
        (factors with many values leave out those below 0.0001), the expectation,
        Z's mean and sd, the written images and predicted factors."""
        source = self.model if self.model else f"story {self.story!r} (true tables)"
        lines = [self.query, f"rung: {self.rung}   samples: {self.samples}   ESS: {self.ess:.1f}   model: {source}"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {self.truth_note}"] if self.truth_note else []
        for t, dist in self.distribution.items():
            width = max(len(t), *(len(v) for v in dist))
            lines += ["", f"{t:<{width}}  probability"]
            shown = {v: p for v, p in dist.items() if len(dist) <= 6 or p >= 5e-5}
            for v, p in shown.items():
                lines.append(f"{v:<{width}}  {p:11.4f}  {'#' * round(p * 40)}")
            if len(shown) < len(dist):
                lines.append(f"({len(dist) - len(shown)} more values below 0.0001 not shown; --json lists all)")
        for t, e in self.expectation.items():
            lines += ["", f"E[{t}] = {e:.6g}"]
        for t, qs in self.quantiles.items():
            lines += ["", f"{t}  quantiles: " + "  ".join(f"{q} {v:.6g}" for q, v in qs.items())]
            hist = self.histogram[t]
            edges, probs = hist["edges"], hist["probabilities"]
            lines += [f"{'from':>12}  {'to':>12}  probability"]
            for i, p in enumerate(probs):
                lines.append(f"{edges[i]:12.6g}  {edges[i + 1]:12.6g}  {p:11.4f}  {'#' * round(p * 40)}")
        if self.probability is not None:
            lines += ["", f"probability: {self.probability:.4f}"]
        for t, stats in self.latent.items():
            lines += ["", f"{t}  dim        mean          sd"]
            for i, (m, s) in enumerate(zip(stats["mean"], stats["sd"])):
                lines.append(f"{'':<{len(t)}}  {i:3d}  {m:10.4f}  {s:10.4f}")
        if image_target(self.targets):
            lines.append("")
            if self.images:
                lines += [f"{name} image: {path}" for name, path in self.images.items()]
            else:
                lines.append("images: not written (pass --out DIR)")
            lines.append(
                "q(factors | X) reads off the mean image: " + ", ".join(f"{f}={v}" for f, v in self.predicted.items())
            )
        return "\n".join(lines)


def _checked_out(out: str | os.PathLike) -> Path:
    """The folder ``out`` for an answer's PNGs, checked with each file it would
    hold (:func:`cvaeq.limits.checked_folder`, :func:`~cvaeq.limits.checked_output`),
    so that a bad name is refused before any file is written."""
    from ..limits import checked_folder, checked_output

    out = checked_folder(out, "answer's PNGs", QueryError)
    for name in IMAGE_FILES.values():
        checked_output(out / name, "PNG", QueryError)
    return out


def image_target(targets) -> str | None:
    """The target that is the image (``X``, or ``X @ do(...)``), if any."""
    return next((t for t in targets if t == IMAGE or t.startswith(IMAGE + " @ ")), None)


def _summarise(r: ResolvedQuery, result: Result, mech: Mechanisms, evidence_image) -> dict[str, Any]:
    """The parts of an answer, keyed by each target's text (a bare name without ``@``)."""
    world = mech.story.world
    if r.events:
        events = {v.key: v.value for v in r.variables if v.value is not None}  # an event's targets all have one
        return {"probability": round(result.probability(events), DIGITS)}
    if r.difference:
        left, right = r.variables
        return {"expectation": {r.targets[0]: round(result.expected_difference(left.key, right.key), DIGITS)}}
    out: dict[str, Any] = {}
    for v in r.variables:
        t, key = v.variable, v.key
        if t in world.continuous:
            out.setdefault("expectation", {})[key] = round(result.expectation(key), DIGITS)
            if not r.expectation:
                out.setdefault("quantiles", {})[key] = _quantiles(result, key)
                edges, probs = result.histogram(key)
                out.setdefault("histogram", {})[key] = {
                    "edges": [round(e, DIGITS) for e in edges],
                    "probabilities": [round(p, DIGITS) for p in probs],
                }
        elif t in world.sizes:
            if r.expectation:
                out.setdefault("expectation", {})[key] = round(result.expectation(key), DIGITS)
            else:
                dist = result.distribution(key)
                out.setdefault("distribution", {})[key] = {world.label(t, k): round(p, DIGITS) for k, p in dist.items()}
        elif t == LATENT:
            out.setdefault("latent", {})[key] = _latent(result, key)
        elif t == IMAGE:
            out.update(_images(result, key, mech, evidence_image))
    return out


def _quantiles(result: Result, key: str) -> dict[str, float]:
    """A continuous target's weighted quantiles keyed ``"5%"``, ``"25%"``, ... ."""
    return {f"{q * 100:g}%": round(v, DIGITS) for q, v in result.quantiles(key).items()}


def _latent(result: Result, key: str) -> dict[str, list[float]]:
    s = result.samples[key].double()
    w = result.weights.reshape(-1, 1)
    mean = (s * w).sum(0)
    sd = ((s - mean).pow(2) * w).sum(0).clamp(min=0).sqrt()
    return {"mean": [round(v, DIGITS) for v in mean.tolist()], "sd": [round(v, DIGITS) for v in sd.tolist()]}


def _images(result: Result, key: str, mech: Mechanisms, evidence_image) -> dict[str, Any]:
    n = min(GRID_IMAGES, result.num_particles)
    mean = result.mean_image(key).numpy().astype(np.float64).clip(0, 1)
    return {
        "sample_images": result.sample_images(n, key).numpy().astype(np.uint8),
        "mean_image": mean,
        "evidence_image": evidence_image,
        "predicted": read_factors(mech.image_model, mean, mech.story.world),
    }


def _uses_image(r: ResolvedQuery) -> bool:
    """Whether answering ``r`` needs an image model: X is a target or observed."""
    return IMAGE in r.evidence or any(v.variable == IMAGE for v in (*r.variables, *r.scenario_evidence))


def question_scm(r: ResolvedQuery, mech: Mechanisms):
    """The SCM ``r`` is asked of: with the image node X when X is in the question
    (a target in any scenario, or evidence), or Z is and :func:`_z_needs_image`."""
    return mech.scm(_uses_image(r) or _z_needs_image(r, mech))


def _z_needs_image(r: ResolvedQuery, mech: Mechanisms) -> bool:
    """Whether a question about Z (and factors), with no X in it, must still be
    asked of the SCM with the image node.

    Not when X is the last node of the graph (it is when its parents are every
    factor and Z, as the image model's are): the engine draws the noise node
    by node in that order, so leaving X out changes no draw and the answer is
    the same, bit for bit (``tests/query/test_answer.py``), without decoding
    a picture per particle and scenario that nobody asked for. A model whose Z
    has another size than its story's keeps the image node (its SCM's Z is
    the model's).
    """
    if not any(v.variable == LATENT for v in r.variables) or mech.image_model is None:
        return False
    return (
        mech.story.graph.order[-1] != IMAGE
        or int(getattr(mech.image_model, "latent_dim", mech.story.latent_dim)) != mech.story.latent_dim
    )


def question_work(r: ResolvedQuery, scm, world) -> dict[str, int]:
    """What answering ``r`` on ``scm`` computes per particle, the arguments of
    :func:`cvaeq.limits.question_cost` (all but the particles).

    Every scenario in which the image changes decodes one picture per particle:
    the abduction's (it draws or explains the picture; the factual scenario's
    values are its own), then each distinct intervened scenario whose
    interventions reach X.
    """
    intervened = {scenario_key(v.scenario) for v in (*r.variables, *r.scenario_evidence) if v.scenario}
    image = IMAGE in scm.nodes
    pixels = int(np.prod(world.image_shape)) if image else 0
    reaching = sum(any(f == IMAGE or IMAGE in scm.graph.descendants(f) for f, _ in do) for do in intervened)
    values = nodes = 0
    for v in scm.nodes:
        if v == IMAGE:
            continue
        nodes += 1
        m = scm.mechanisms[v]
        size = getattr(m, "size", None)
        dim = getattr(m, "dim", None)
        # a class's noise has one Gumbel per class; a vector (Z) holds its noise and its value
        values += (
            int(size) if isinstance(size, int) and size > 0 else 2 * (dim if isinstance(dim, int) and dim > 0 else 1)
        )
    return {
        "pixels": pixels,
        "image_worlds": (1 + reaching) if image else 0,
        "values": values,
        "nodes": nodes,
        "worlds": 1 + len(intervened),
    }


def answer_query(r: ResolvedQuery, mech: Mechanisms, samples: int | None = None, seed: int = 0) -> Answer:
    """Answer a resolved query with the given mechanisms (see :func:`ask`)."""
    image_target = any(v.variable == IMAGE for v in r.variables)
    uses_image = image_target or IMAGE in r.evidence
    if uses_image and mech.image_model is None:
        raise QueryError(NEEDS_MODEL)
    if samples is None:
        samples = IMAGE_SAMPLES if image_target else DEFAULT_SAMPLES
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise QueryError(f"samples must be a positive integer, got {samples!r}")
    samples = int(samples)
    if samples > MAX_SAMPLES:
        raise QueryError(f"{samples} samples is too many; use at most {MAX_SAMPLES:,}")
    if uses_image and samples > MAX_IMAGE_SAMPLES:
        raise QueryError(
            f"{samples} samples is too many for a query about images (each is an image); "
            f"use at most {MAX_IMAGE_SAMPLES}"
        )
    scm = question_scm(r, mech)
    # bounded by its work before any is done: particles x scenarios x pixels decoded (cvaeq.limits)
    cost = check_question_cost(samples, **question_work(r, scm, mech.story.world), error=QueryError)
    try:
        return _answer(r, mech, scm, samples, seed)
    finally:
        if cost >= RELEASE_ABOVE_BYTES:  # a big question's freed buffers go back to the system
            release_freed_memory()


def _answer(r: ResolvedQuery, mech: Mechanisms, scm, samples: int, seed: int) -> Answer:
    """The engine's answer to ``r`` on ``scm``, summarised (:func:`answer_query` checked it)."""
    evidence: dict[str, Any] = {}
    evidence_image = None
    for v, value in r.evidence.items():
        if v == IMAGE:
            evidence_image = np.asarray(value)
            if not evidence_image.flags.writeable:  # a read-only array (a file's buffer): torch wants its own copy
                evidence_image = evidence_image.copy()
            levels = mech.story.world.pixel == "8bit"  # X is uint8 levels there, float 0/1 in a binary world
            evidence[v] = torch.as_tensor(evidence_image, dtype=None if levels else torch.float32)
        else:
            evidence[v] = _tensor(value)
    targets = {v.key: (v.variable, _tensors(v.scenario)) for v in r.variables}
    # a class about another world, or an interval (op, number) (a continuous factor's "=" is refused by resolve)
    observed = [(v.variable, _tensors(v.scenario), v.value) for v in r.scenario_evidence if v.value is not None]
    with torch.no_grad():
        result = infer_scenarios(scm, targets, evidence, num_particles=samples, seed=seed, scenario_evidence=observed)
        parts = _summarise(r, result, mech, evidence_image)
    ess = round(float(result.ess), 6)
    return Answer(
        query=r.text,
        rung=r.rung,
        targets=r.targets,
        samples=samples,
        ess=ess,
        model=mech.name,
        story=mech.story.name,
        result=result,
        warnings=evidence_warnings(ess, samples, bool(evidence or observed)),
        pixel=mech.story.world.pixel,
        truth_note=_truth_note(r, mech.story),
        **parts,
    )


def _truth_note(r: ResolvedQuery, story) -> str | None:
    """Why a counterfactual picture of a world without a renderer has no truth beside it (or, under
    a single ``do()`` of a factor the world redraws, where its truth is shown), or None."""
    world = story.world
    if world.has_renderer or not image_target(r.targets) or r.rung != "counterfactual":
        return None
    from ..data.renderless import no_truth, redrawn_truth
    from ..evaluation.truthfree import redrawn_intervention

    factor = redrawn_intervention(r.interventions, story)
    return no_truth(world) if factor is None else redrawn_truth(world, factor)


def _tensors(scenario: Mapping[str, int | float]) -> dict[str, torch.Tensor]:
    """A scenario's interventions as the engine takes them."""
    return {f: _tensor(c) for f, c in scenario.items()}


def _tensor(value: object) -> torch.Tensor:
    """A class as int64, a continuous factor's value as float64 (never rounded to float32)."""
    return torch.tensor(value, dtype=torch.float64) if isinstance(value, float) else torch.tensor(value)


def ask(
    text: str,
    image=None,
    model: Any = None,
    story: str | os.PathLike | Story | None = None,
    samples: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    threads: int | None = None,
) -> Answer:
    """Answer the query ``text``; the same arguments give the same answer.

    :param text: a query, e.g. ``"P(X | do(shape=square), X=img)"`` (docs/queries.md).
    :param image: what ``img`` stands for: a PNG or ``.npy`` path, factors
        ``"shape=heart,scale=1,..."`` or an array of the world's image size
        (see :mod:`cvaeq.images`); read in the story's world.
    :param model: a checkpoint path, a loaded checkpoint or an image model;
        None: the shipped checkpoint if installed, else ``story``'s true tables.
    :param story: a story (name, path or object): its true tables, or the
        story an image model goes with. Alone, with a question about the
        image (X), the shipped checkpoint trained on that story answers
        (``cvaeq/weights/<story>.safetensors``: ``default``, ``pendulum``).
    :param samples: particles; default :data:`IMAGE_SAMPLES` (100) when X is a
        target, else :data:`DEFAULT_SAMPLES` (1000).
    :param seed: seeds every random draw: an integer from 0 to 2**63 - 1.
    :param out: a folder to write the PNGs of an X answer into (else none are written).
    :param threads: torch's CPU threads for the call (None: as ``cvaeq query``
        picks them, :mod:`cvaeq.threads`; the caller's count is restored after).
    """
    from ..threads import threads_for

    with threads_for(threads):
        return _ask(text, image, model, story, samples, seed, out)


def _ask(text, image, model, story, samples, seed, out) -> Answer:
    from ..images import load_image
    from ..limits import MAX_SEED, check_count

    seed = check_count(seed, "seed", MAX_SEED, low=0, error=QueryError)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise QueryError(f"out must be a folder name (a str or path), got {type(out).__name__}")
    query = parse(text)
    mech = load_mechanisms(model, story)
    loaded = None if image is None else load_image(image, mech.story.world)
    r = resolve(query, mech.story, {"img": loaded})
    if model is None and mech.image_model is None and _uses_image(r):
        # a story alone and a question about the image: the shipped checkpoint trained on that story
        mech = load_mechanisms(story=mech.story, image=True)
    if loaded is not None and IMAGE not in r.evidence:
        raise QueryError("an image was given but the query does not use it; write X=img in the query to observe it")
    if out is not None and image_target(r.targets):
        _checked_out(out)  # before any work: a bad --out fails at once
    a = answer_query(r, mech, samples, seed)
    if out is not None and image_target(a.targets):
        a = a.save_images(out)
    return a
