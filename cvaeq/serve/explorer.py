"""The explorer's library side: one loaded model, questions in, answers with pictures out.

:class:`Explorer` is what ``cvaeq serve`` wraps in HTTP (:mod:`.app`); Python
users can call it the same way. It loads the model once
(:func:`cvaeq.loading.load_model`) and answers each question with
:func:`cvaeq.query.answer.answer_query`, the function ``cvaeq query`` ends in,
so an answer's JSON is the CLI's. Around it, what a page needs:

* :meth:`Explorer.describe`: the world's factors and values, the story's DAG,
  a first question — everything the page's controls are generated from;
* the evidence as data, never as a file name: the world's factors (rendered
  by the world's renderer), a row of the world's labelled pictures (a world
  of real pictures, :mod:`cvaeq.data.labelled`) or the bytes of a PNG
  (:func:`cvaeq.images.decode_png`);
* for an image question, the distribution of every factor in the answer's
  worlds (the page's bar charts) and, when the evidence is a rendering of
  known factors and the question intervenes, the story's **true
  counterfactual** (:func:`cvaeq.evaluation.truth.true_counterfactual_of`)
  with the IoU of the model's thresholded mean image against it; a world
  without a renderer has none, and the answer's ``truth_note`` says so
  (:func:`cvaeq.data.renderless.no_truth`);
* :meth:`Explorer.decode`: the decoder's picture of chosen factors and Z.

One lock serialises the engine: :func:`cvaeq.engine.infer` seeds torch's
global random generator (forked), which two threads must not do at once if
the same seed is to give the same answer.

>>> ex = Explorer(story="pendulum")         # the story's shipped model
>>> query, evidence = ex.first_question()
>>> a = ex.ask(query, {"factors": evidence}, samples=20, seed=0).to_dict()
>>> a["rung"], a == ex.ask(query, {"factors": evidence}, samples=20, seed=0).to_dict()
('counterfactual', True)
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..errors import DataError, QueryError
from ..image_model import ImageModelAdapter
from ..loading import load_model
from ..query import parse, resolve
from ..query.answer import DEFAULT_SAMPLES, IMAGE_SAMPLES, NEEDS_MODEL, Answer, answer_query, image_target, question_scm
from ..rung import scenario_key
from ..story import IMAGE

__all__ = [
    "Explorer",
    "Explored",
    "Question",
    "MAX_QUERY_CHARS",
    "MAX_SERVE_SAMPLES",
    "MAX_SERVE_IMAGE_SAMPLES",
    "MAX_SERVE_PICTURES",
    "TRUTH_PARTICLES",
    "Z_BOUND",
]

#: Longest query text the explorer reads.
MAX_QUERY_CHARS = 2000
#: Most particles per question (a server answers many people; the CLI allows more).
MAX_SERVE_SAMPLES = 100_000
#: Most particles per question about images (each particle decodes an image).
MAX_SERVE_IMAGE_SAMPLES = 1000
#: Most pictures decoded per question (particles x worlds with an image; a question about Z
#: alone decodes none, see cvaeq.query.answer.question_scm): 16,384 pictures of 64x64 float32 are 256 MiB per copy.
MAX_SERVE_PICTURES = 16_384
#: Story particles defining the true counterfactual image (as ``cvaeq eval``'s default).
TRUTH_PARTICLES = 256
#: Z coordinates of the decoder view lie in [-Z_BOUND, Z_BOUND] (its prior is N(0, I)).
Z_BOUND = 5.0
#: Rendered evidence images kept (the page moves among a few at a time).
EVIDENCE_CACHE = 256


@dataclass(frozen=True)
class Explored:
    """One answer as the explorer shows it.

    :ivar answer: the :class:`~cvaeq.query.answer.Answer` (``to_dict()`` is the CLI's JSON).
    :ivar interventions: ``{factor: value}`` of the question's ``do()``, as written in queries.
    :ivar observed: ``{factor: value}`` of its factor evidence.
    :ivar factors: for an image question: ``{factor: {value: p}}`` in the answer's worlds.
    :ivar evidence_factors: the evidence's factors when it was picked by them, else None.
    :ivar truth_image: the true counterfactual's mean image ``(H, W)`` or ``(C, H, W)``
        on the [0, 1] scale, or None.
    :ivar truth_factors: ``{factor: {value: p}}`` of the true counterfactual, or None.
    :ivar iou: IoU of the model's thresholded mean image against the thresholded truth
        (binary worlds).
    :ivar l1: mean absolute difference per pixel and channel of the model's mean
        picture and the true one, on the [0, 1] scale (8-bit worlds).
    :ivar observed_image: whether the question observes the image (``X=img``).
    :ivar truth_note: why there is no true counterfactual where one was expected, or None.
    :ivar truth_exact: the truth is the world's own redrawing of the evidence (``World.redraw``),
        exact, not a mean over the story's particles.
    """

    answer: Answer
    interventions: dict[str, str] = field(default_factory=dict)
    observed: dict[str, str] = field(default_factory=dict)
    factors: dict[str, dict[str, float]] = field(default_factory=dict)
    evidence_factors: dict[str, str] | None = None
    truth_image: np.ndarray | None = field(default=None, repr=False)
    truth_factors: dict[str, dict[str, float]] | None = None
    iou: float | None = None
    l1: float | None = None
    observed_image: bool = False
    truth_note: str | None = None
    truth_exact: bool = False

    @property
    def pictures(self) -> dict[str, np.ndarray]:
        """``{"evidence", "samples", "mean", "truth"}`` → arrays, those the answer has."""
        out = self.answer.pictures()  # on the [0, 1] scale, grey or colour
        if self.truth_image is not None:
            out["truth"] = self.truth_image
        return out

    def to_dict(self, image_urls: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The answer's JSON (``cvaeq query --json``'s, with ``images`` naming ``image_urls``
        instead of files) and the explorer's additions: ``interventions``, ``observed``,
        ``observed_image``, ``factors``, ``evidence_factors``, ``truth``."""
        a = self.answer
        if image_urls is not None and image_target(a.targets):
            a = replace(a, images=dict(image_urls))
        d = a.to_dict()
        d["targets"] = list(self.answer.targets)
        d["interventions"] = self.interventions
        d["observed"] = self.observed
        d["observed_image"] = self.observed_image
        if self.factors:
            d["factors"] = self.factors
        if self.evidence_factors is not None:
            d["evidence_factors"] = self.evidence_factors
        if self.truth_factors is not None:
            score = {"iou": self.iou} if self.l1 is None else {"l1": self.l1}
            exact = {"exact": True} if self.truth_exact else {"particles": TRUTH_PARTICLES}
            d["truth"] = {**score, "factors": self.truth_factors, **exact}
        if self.truth_note is not None:
            d["truth_note"] = self.truth_note
        return d


@dataclass(frozen=True)
class Question:
    """A question :meth:`Explorer.prepare` read and checked, not yet answered.

    :ivar text, image, samples, seed: as asked (``seed`` filled in).
    :ivar resolved: the resolved query.
    :ivar classes: the evidence's factor classes when it was picked by them.
    :ivar image_question: whether the image is a target.
    :ivar pictures: pictures the answer decodes (particles x worlds with an
        image): what the question costs, which :mod:`cvaeq.serve.lanes` reads.
    """

    text: str
    image: Any
    samples: int | None
    seed: int
    resolved: Any = field(repr=False)
    classes: dict[str, int] | None
    image_question: bool
    pictures: int


def _distribution(classes: np.ndarray, weights: np.ndarray, world, factor: str) -> dict[str, float]:
    probs = np.bincount(classes, weights=weights, minlength=world.sizes[factor])
    return {world.label(factor, k): round(float(p), 10) for k, p in enumerate(probs)}


def _middle(f) -> str:
    """A factor's middle value as written in queries (a continuous one: the middle of its interval)."""
    return f.label((f.low + f.high) / 2) if f.continuous else f.label(f.size // 2)


def _other(f, step: int | None = None) -> str:
    """Another value than :func:`_middle` of a factor, for a first question's ``do()``."""
    if f.continuous:
        return f.label(f.low + (f.high - f.low) * 0.75)
    step = max(1, f.size // 4) if step is None else step
    return f.label((f.size // 2 + step) % f.size)


def _describe_factor(f) -> dict[str, Any]:
    """A factor as the page's controls are made from it: its values (a continuous one: its interval)."""
    if f.continuous:
        return {"name": f.name, "numeric": True, "continuous": True, "low": f.low, "high": f.high, "values": []}
    return {"name": f.name, "numeric": f.numeric, "values": [f.label(k) for k in range(f.size)]}


def _bars(answer, factor: str) -> dict[str, float]:
    """A factor's bar chart in an answer: a categorical factor's distribution, a
    continuous one's histogram with each bin labelled by its interval."""
    if factor in answer.distribution:
        return answer.distribution[factor]
    hist = answer.histogram[factor]
    edges, probs = hist["edges"], hist["probabilities"]
    return {f"{edges[k]:.4g}-{edges[k + 1]:.4g}": float(p) for k, p in enumerate(probs)}


class Explorer:
    """A loaded model (or a story's true tables) answering the questions of a page.

    :param model: as :func:`cvaeq.loading.load_model` takes it (None: the
        shipped checkpoint if installed, else ``story``).
    :param story: a story name, path or object: with no model, the checkpoint
        shipped for it if any (``default``, ``pendulum``), else its true tables
        with no image model (factor questions only); or the story of an image
        model object.
    :param seed: the seed of a question that names none.
    """

    def __init__(self, model: Any = None, story: Any = None, seed: int = 0):
        #: the :class:`~cvaeq.loading.LoadedModel` answering the page's questions
        self.loaded = load_model(model, story, image=True)  # the pendulum's page: the pendulum's model
        self.story = self.loaded.story
        self.world = self.story.world
        #: the image model as the decoder view calls it (None: no image model)
        self.image_model = (
            None
            if self.loaded.image_model is None
            else ImageModelAdapter(self.loaded.image_model, self.world.image_shape)
        )
        self.seed = int(seed)
        #: how a worker process makes the same explorer (None: it cannot, the model or story is an object)
        self.spec = (
            {"model": model, "story": story, "seed": self.seed}
            if all(v is None or isinstance(v, (str, os.PathLike)) for v in (model, story))
            else None
        )
        self.lock = threading.Lock()
        self._evidence: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self._labelled: Any = None  # the world's labelled pictures, read on first use (a world of files)

    @property
    def model_name(self) -> str | None:
        """The model's file name (never its folder: no server path leaves the server), or None."""
        name = self.loaded.name
        return None if name is None else os.path.basename(str(name))

    @property
    def has_model(self) -> bool:
        """Whether an image model is loaded (image questions and the decoder view need one)."""
        return self.loaded.image_model is not None

    # ------------------------------------------------------------ the page

    def first_question(self) -> tuple[str, dict[str, str]]:
        """A first question and its evidence's factors (each factor's middle value).

        With a model: "what would this image have been, had a factor that causes
        no other factor taken another value" (the last such factor in the
        story's order: its counterfactual is a crisp picture); without one, that
        factor's interventional distribution under the first factor.
        """
        w, story = self.world, self.story
        evidence = {f.name: _middle(f) for f in w.factors}
        if not w.has_renderer and self._pictures() is not None:  # a real picture's measured factors
            evidence = self._pictures().factors_of(self.first_row)
            evidence = {f: w.label(f, v) for f, v in evidence.items()}
        leaves = [f for f in story.factors if not set(story.graph.children(f)) & set(w.names)]
        chosen = w.factor((leaves or list(story.factors))[-1])
        other = _other(chosen)
        if self.has_model:
            return f"P(X | do({chosen.name}={other}), X=img)", evidence
        first = w.factor(story.factors[0])
        other = _other(first, 1)
        return f"P({chosen.name} | do({first.name}={other}))", evidence

    def describe(self) -> dict[str, Any]:
        """What the page is generated from: world, story, model, factors (name,
        whether numeric, every value as written in queries), the DAG, Z's
        dimension, a first question and its evidence, and the bounds."""
        w = self.world
        query, evidence = self.first_question()
        return {
            "world": w.name,
            "story": self.story.name,
            "model": self.model_name,
            "has_model": self.has_model,
            "image_shape": list(w.image_shape),
            "factors": [_describe_factor(f) for f in w.factors],
            "has_renderer": w.has_renderer,
            "graph": {"nodes": list(self.story.graph.order), "edges": [list(e) for e in self.story.graph.edges]},
            "latent_dim": self.story.latent_dim,
            "query": query,
            "evidence": evidence,
            **self._describe_pictures(),
            "seed": self.seed,
            "samples": IMAGE_SAMPLES,
            "limits": {
                "query_chars": MAX_QUERY_CHARS,
                "samples": MAX_SERVE_SAMPLES,
                "image_samples": MAX_SERVE_IMAGE_SAMPLES,
                "pictures": MAX_SERVE_PICTURES,
                "z_bound": Z_BOUND,
            },
        }

    def _pictures(self):
        """The world's shipped labelled pictures (:func:`cvaeq.data.labelled.load_labelled`), or None."""
        if self.world.data is None:
            return None
        if self._labelled is None:
            from ..data.labelled import load_labelled

            with self.lock:
                if self._labelled is None:
                    self._labelled = load_labelled(None, self.world)
        return self._labelled

    @property
    def first_row(self) -> int:
        """The row of the labelled pictures a first question is about: the first held-out one."""
        pics = self._pictures()
        assert pics is not None
        return int(pics.split("test").rows[0])

    def _describe_pictures(self) -> dict[str, Any]:
        """For a world without a renderer: why it has no truth and, with labelled files, their rows."""
        if self.world.has_renderer:
            return {}
        from ..data.picture_set import held_out_mask
        from ..data.renderless import no_truth

        out: dict[str, Any] = {"truth_note": no_truth(self.world)}
        pics = self._pictures()
        if pics is not None:
            test = pics.rows[held_out_mask(self.world, pics.rows)]
            out["pictures"] = {
                "rows": [int(pics.rows.min()), int(pics.rows.max())],
                "test_rows": [int(test.min()), int(test.max())] if len(test) else None,
                "first": self.first_row,
            }
        return out

    def dag(self, intervened: Sequence[str] = (), observed: Sequence[str] = ()) -> str:
        """The story's DAG as SVG, the arrows into ``intervened`` nodes cut (:mod:`cvaeq.dag_svg`)."""
        from ..dag_svg import dag_svg

        return dag_svg(self.story.graph, intervened, observed, title=f"the causal graph of story {self.story.name}")

    # ------------------------------------------------------------ the evidence

    def factor_classes(self, factors: Mapping[str, Any]) -> dict[str, int]:
        """``{factor: class}`` of ``{factor: value}`` naming every factor of the world once."""
        if not isinstance(factors, Mapping):
            raise DataError(f"factors must be an object {{name: value}} naming {', '.join(self.world.names)}")
        for k, v in factors.items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise DataError(f"{k}: a factor's value is a name or a number, got {v!r}")
        return self.world.parse_factors([f"{k}={v}" for k, v in factors.items()])

    def render(self, classes: Mapping[str, int]) -> np.ndarray:
        """The world's rendering of ``classes`` (the truth), cached for the page's few images."""
        key = tuple(int(classes[f]) for f in self.world.names)
        with self.lock:
            hit = self._evidence.get(key)
            if hit is not None:
                self._evidence.move_to_end(key)
                return hit
        image = self.world.render_checked(self.world.row(classes))[0].astype(np.uint8)
        with self.lock:
            self._evidence[key] = image
            while len(self._evidence) > EVIDENCE_CACHE:
                self._evidence.popitem(last=False)
        return image

    def evidence(self, image: Any) -> tuple[np.ndarray | None, dict[str, int] | None]:
        """The image ``img`` stands for, and its factor classes when known.

        :param image: None; ``{"factors": {name: value}}`` (rendered by the
            world); ``{"row": N}`` (picture N of the world's labelled files: a
            world without a renderer; its factors are the measured ones); or
            ``{"png": base64 text}`` (a PNG file's bytes, checked as
            ``--image`` files are). Never a file name.
        """
        if image is None:
            return None, None
        if not isinstance(image, Mapping) or len(image) != 1 or not {"factors", "png", "row"} & set(image):
            raise DataError('the image must be {"factors": {name: value, ...}}, {"row": N} or {"png": base64 text}')
        if "row" in image:
            return self._row_evidence(image["row"])
        if "factors" in image:
            if not self.world.has_renderer:
                from ..data.renderless import require_renderer

                require_renderer(
                    self.world,
                    "the evidence cannot be drawn from factors",
                    'give a picture of its files ({"row": N}) or a PNG ({"png": base64 text})',
                )
            classes = self.factor_classes(image["factors"])
            return self.render(classes), classes
        from ..images import decode_png

        text = image["png"]
        if not isinstance(text, str):
            raise DataError("png must be the base64 text of a PNG file")
        if text.startswith("data:"):
            text = text.partition(",")[2]
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DataError("png is not base64 text; send the PNG file's bytes base64-encoded") from None
        return decode_png(blob, self.world.image_shape, "the uploaded PNG", self.world.pixel), None

    def _row_evidence(self, row: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Picture ``row`` of the world's labelled files and its measured factors."""
        pics = self._pictures()
        if pics is None:
            raise DataError(f"world {self.world.name!r} ships no labelled pictures; give its factors or a PNG")
        if isinstance(row, bool) or not isinstance(row, int):
            raise DataError(f"row must be a whole number, the row index of a picture of the files, got {row!r}")
        at = pics.row(row)
        return pics.images[at].copy(), pics.factors_of(row)

    # ------------------------------------------------------------ questions

    def prepare(self, text: str, image: Any = None, samples: int | None = None, seed: int | None = None) -> Question:
        """Read and check a question without answering it (the refusals that need no
        computing: syntax, names, bounds); :attr:`Question.pictures` says what it costs."""
        if not isinstance(text, str) or not text.strip():
            raise QueryError("the query is empty; write one, e.g. P(X | do(...), X=img)")
        if len(text) > MAX_QUERY_CHARS:
            raise QueryError(f"the query is {len(text):,} characters; at most {MAX_QUERY_CHARS:,}")
        seed = self.seed if seed is None else seed
        from ..limits import MAX_SEED, check_count

        check_count(seed, "seed", MAX_SEED, low=0, error=QueryError)
        loaded, classes = self.evidence(image)
        r = resolve(parse(text), self.story, {"img": loaded})
        if loaded is not None and IMAGE not in r.evidence:
            raise QueryError("an image was given but the query does not use it; write X=img in the query to observe it")
        image_question = any(v.variable == IMAGE for v in r.variables)
        # a question about Z decodes pictures only when it must be asked with the image node
        # (cvaeq.query.answer.question_scm decides it, as for the CLI and ask())
        uses_image = (
            image_question or IMAGE in r.evidence or (self.has_model and IMAGE in question_scm(r, self.loaded).nodes)
        )
        if samples is not None:
            bound = MAX_SERVE_IMAGE_SAMPLES if uses_image else MAX_SERVE_SAMPLES
            check_count(samples, "samples", bound, error=QueryError)
        if (image_question or IMAGE in r.evidence) and not self.has_model:
            raise QueryError(NEEDS_MODEL)
        particles = samples if samples is not None else (IMAGE_SAMPLES if image_question else DEFAULT_SAMPLES)
        # with the image model in the SCM, every scenario a question names is run with its picture
        decoded = (IMAGE in r.evidence) + len({scenario_key(v.scenario) for v in r.variables + r.scenario_evidence})
        pictures = particles * decoded if uses_image else 0
        if pictures > MAX_SERVE_PICTURES:
            raise QueryError(
                f"this question decodes {pictures:,} pictures ({particles:,} particles x {decoded} worlds with an "
                f"image); the explorer decodes at most {MAX_SERVE_PICTURES:,} per question: ask with "
                f"samples at most {MAX_SERVE_PICTURES // decoded:,}, or about fewer worlds"
            )
        return Question(text, image, samples, seed, r, classes, image_question, pictures)

    def ask(self, text: str, image: Any = None, samples: int | None = None, seed: int | None = None) -> Explored:
        """Answer the query ``text`` about ``image`` (see :meth:`evidence`).

        The same arguments give the same answer, whoever else is asking.
        """
        return self.answer(self.prepare(text, image, samples, seed))

    def answer(self, q: Question) -> Explored:
        """The answer to a question :meth:`prepare` read."""
        r, world = q.resolved, self.world
        # an image question also reports every factor of its worlds (the page's bar charts)
        extra = tuple(f for f in world.names if f not in r.targets)
        asked = r.with_targets(extra) if q.image_question and r.plain else r
        with self.lock:
            answer = answer_query(asked, self.loaded, q.samples, q.seed)
        answer = replace(answer, model=self.model_name)  # no server path in an answer
        factors: dict[str, dict[str, float]] = {}
        if asked is not r:
            factors = {f: _bars(answer, f) for f in world.names}

            def asked_only(part: dict) -> dict:
                return {t: d for t, d in part.items() if t in r.targets}

            answer = replace(
                answer,
                targets=r.targets,
                distribution=asked_only(answer.distribution),
                quantiles=asked_only(answer.quantiles),
                histogram=asked_only(answer.histogram),
                expectation=asked_only(answer.expectation),
            )
        classes = q.classes
        out = Explored(
            answer=answer,
            interventions={f: world.label(f, c) for f, c in r.interventions.items()},
            observed={f: world.label(f, c) for f, c in r.evidence.items() if f in world.sizes},
            factors=factors,
            evidence_factors=None if classes is None else {f: world.label(f, c) for f, c in classes.items()},
            observed_image=IMAGE in r.evidence,
        )
        if q.image_question and r.plain and r.interventions and IMAGE in r.evidence and not world.has_renderer:
            from ..data.renderless import no_truth

            return self._redrawn_truth(out, r) or replace(out, truth_note=no_truth(world))
        if classes is not None and q.image_question and r.plain and r.interventions and IMAGE in r.evidence:
            out = self._with_truth(out, classes, r, q.seed)
        return out

    def _factual(self, classes: Mapping[str, int], r) -> tuple[dict[str, int] | None, str | None]:
        """The factual factors of the truth: the rendered evidence's, with the question's factor
        evidence (a factor's value given beside ``X=img``) in their place; or None and why there is none.

        In the story the image is drawn from its factors, so factor evidence
        that renders another image than the evidence contradicts it (no
        factual world has both); evidence rendering the same image (dSprites'
        orientations 0 and 2π draw one picture) names another factual world of that image.
        """
        world = self.world
        given = {f: int(c) for f, c in r.evidence.items() if f in world.sizes}
        factual = dict(classes) | given
        if factual == dict(classes):
            return factual, None
        if np.array_equal(self.render(factual), self.render(classes)):
            return factual, None
        differ = ", ".join(f"{f}={world.label(f, c)}" for f, c in given.items() if c != classes[f])
        drawn = ", ".join(f"{f}={world.label(f, classes[f])}" for f, c in given.items() if c != classes[f])
        return None, (
            f"no true counterfactual: the evidence {differ} contradicts the image, which the world "
            f"draws with {drawn} (in the story an image is drawn from its factors, so no factual "
            "world has both)"
        )

    def _redrawn_truth(self, out: Explored, r) -> Explored | None:
        """``out`` with the true counterfactual of a world without a renderer where it has one: a
        single ``do()`` of a factor the world redraws in its pictures and no factor depends on
        (``World.redraw``; Morpho-MNIST's intensity), the evidence picture redrawn at the value.
        Exact: no particles, and no bars (the picture alone does not say its other factors)."""
        from ..evaluation.truthfree import redrawn_intervention

        world = self.world
        factor = redrawn_intervention(r.interventions, self.story)
        if factor is None or world.pixel != "8bit":
            return None
        value = r.interventions[factor]
        picture = np.asarray(r.evidence[IMAGE])
        if picture.dtype != np.uint8:  # an 8-bit world's evidence is its levels; anything else has no redrawing
            return None
        picture = picture.reshape(1, *world.image_shape)
        image = world.redraw_checked(factor, picture, [value])[0].astype(np.float64) / world.max_level
        l1 = float(np.abs(np.asarray(out.answer.mean_image, dtype=np.float64) - image).mean())
        answer = replace(out.answer, truth_note=None)  # the truth is beside it, not missing
        return replace(out, answer=answer, truth_image=image, truth_factors={}, l1=round(l1, 6), truth_exact=True)

    def _with_truth(self, out: Explored, classes: Mapping[str, int], r, seed: int) -> Explored:
        """``out`` with the story's true counterfactual of the rendered evidence beside it,
        given all the question's evidence: the image's factors and the factor evidence."""
        from ..evaluation.metrics import binarise, iou
        from ..evaluation.truth import true_counterfactual_of

        world = self.world
        known, note = self._factual(classes, r)
        if known is None:
            return replace(out, truth_note=note)
        interventions = r.interventions
        factual = world.row(known)
        with self.lock:
            truth = true_counterfactual_of(
                self.story, factual, {f: np.array([c]) for f, c in interventions.items()}, TRUTH_PARTICLES, seed
            )
        rows = truth.classes[0]
        weights = np.full(len(rows), 1.0 / len(rows))
        truth_factors = {f: _distribution(rows[:, i], weights, world, f) for i, f in enumerate(world.names)}
        if world.pixel == "8bit":  # the renderer's levels, as the model's mean picture: on the [0, 1] scale
            image = np.asarray(truth.mean_image[0], dtype=np.float64)
            image = image / 255 if image.max(initial=0) > 1 else image
            l1 = float(np.abs(np.asarray(out.answer.mean_image, dtype=np.float64) - image).mean())
            return replace(out, truth_image=image, truth_factors=truth_factors, l1=round(l1, 6))
        score = float(iou(binarise(out.answer.mean_image)[None], truth.image)[0])
        return replace(out, truth_image=truth.mean_image[0], truth_factors=truth_factors, iou=round(score, 6))

    def decode(self, factors: Mapping[str, Any], z: Sequence[float]) -> np.ndarray:
        """The decoder's pixel probabilities ``(H, W)`` (8-bit: its mean picture
        ``image_shape`` on the [0, 1] scale) for ``factors`` and latent ``z``: the
        seed project's notebook sliders (the MLP CVAE cvaeq started from),
        p(X | factors, Z) of the loaded model."""
        if not self.has_model:
            raise QueryError(NEEDS_MODEL)
        classes = self.factor_classes(factors)
        dim = self.story.latent_dim
        if not isinstance(z, Sequence) or isinstance(z, str) or len(z) != dim:
            raise DataError(f"z must be {dim} numbers (the story's latent_dim)")
        values = []
        for v in z:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not -Z_BOUND <= v <= Z_BOUND:
                raise DataError(f"each z must be a number from {-Z_BOUND:g} to {Z_BOUND:g}, got {v!r}")
            values.append(float(v))
        c = torch.from_numpy(self.world.row(classes))  # int64 classes; float64 values where a factor is continuous
        assert self.image_model is not None  # has_model
        with self.lock, torch.no_grad():
            probs = self.image_model.pixel_probs(c, torch.tensor([values], dtype=torch.float32))
        return probs[0].double().clamp(0, 1).numpy()
