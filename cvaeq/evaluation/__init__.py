"""Evaluation against the rendered world's ground truth.

* :func:`evaluate` (:mod:`.run`): every score of ``cvaeq eval``;
* :func:`true_counterfactual_for` (:mod:`.truth`): the story's counterfactual
  factors and image of one factual world, from text or mappings (also
  ``cvaeq.true_counterfactual_for``); :func:`true_counterfactual`, the same
  for arrays of worlds (what ``cvaeq eval`` scores against); :func:`~.truth.nearest_rendered`,
  the renderer's reading of a picture (the class whose rendered picture is nearest:
  ``effectiveness_rendered``);
* :func:`tv_scores` (:mod:`.tv`): factor-level total variation to the story;
* :mod:`.metrics`: IoU, factor accuracy modulo the world's look-alike classes, total variation;
* :mod:`.heldout`: the test images, uniform over the world's grid;
* :mod:`.bootstrap`: the 95% percentile-bootstrap interval of every figure;
* :mod:`.predictors`: cvaeq's anti-causal predictors (a classifier or regressor per factor);
* :mod:`.truthfree`: the figures that need no renderer (effectiveness read by the
  predictors, composition, reversibility, bits/dim): all a renderer-less world gets,
  and ``--proxies`` beside the true figures.

The image model is called through :class:`cvaeq.image_model.ImageModelAdapter` only.
"""

from .heldout import draw_heldout, render_float
from .metrics import binarise, factor_correct, given_factor, iou, soft_iou, total_variation
from .run import evaluate, intervention_values, model_to_score
from .truth import TrueCounterfactual, true_counterfactual, true_counterfactual_for
from .tv import TVQuery, interventional_exact, tv_queries, tv_scores

__all__ = [
    "evaluate",
    "model_to_score",
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
]
