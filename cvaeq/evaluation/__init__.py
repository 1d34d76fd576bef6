"""Evaluation against the rendered world's ground truth.

* :func:`evaluate` (:mod:`.run`): every score of ``cvaeq eval``;
* :func:`true_counterfactual_for` (:mod:`.truth`): the story's counterfactual
  factors and image of one factual world, from text or mappings (also
  ``cvaeq.true_counterfactual_for``); :func:`true_counterfactual`, the same
  for arrays of worlds (what ``cvaeq eval`` scores against);
* :func:`tv_scores` (:mod:`.tv`): factor-level total variation to the story;
* :mod:`.metrics`: IoU, factor accuracy modulo the world's look-alike classes, total variation;
* :class:`DedupedImageModel` (:mod:`.dedup`): q(factors | X) once per run of identical images
  (the engine's batched inference, :func:`cvaeq.engine.abduct_groups`, repeats each image K times).
"""

from .dedup import DedupedImageModel
from .heldout import draw_heldout, render_float
from .metrics import binarise, factor_correct, given_factor, iou, soft_iou, total_variation
from .run import evaluate, intervention_values, mechanisms_to_score, pixel_probs
from .truth import TrueCounterfactual, true_counterfactual, true_counterfactual_for
from .tv import TVQuery, interventional_exact, tv_queries, tv_scores

__all__ = [
    "evaluate",
    "mechanisms_to_score",
    "pixel_probs",
    "intervention_values",
    "true_counterfactual",
    "true_counterfactual_for",
    "TrueCounterfactual",
    "tv_scores",
    "tv_queries",
    "TVQuery",
    "interventional_exact",
    "iou",
    "soft_iou",
    "binarise",
    "factor_correct",
    "given_factor",
    "total_variation",
    "draw_heldout",
    "render_float",
    "DedupedImageModel",
]
