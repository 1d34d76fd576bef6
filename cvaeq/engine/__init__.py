"""The engine: Pearl's three steps over weighted particles, generic over mechanisms.

* :func:`abduct` (:mod:`.abduction`): evidence → :class:`Particles` (noise posterior);
  :func:`rejuvenate` redraws resampled copies' noise exactly;
* :func:`intervene` (:mod:`.action`): SCM, ``{node: value}`` → intervened SCM;
* :func:`predict` (:mod:`.prediction`): SCM, particles → ``{node: values}``;
* :func:`infer_scenarios` (:mod:`.counterfactual`) composes them into a
  :class:`Result`: one abduction, then an action and a prediction per
  scenario (:mod:`.scenarios`; PN, PS, PNS, ETT: the joint of scenarios
  sharing the noise); :func:`infer` is it with one scenario,
  ``P(targets | do(...), evidence)``;
* :func:`abduct_groups`, :func:`predict_groups` (:mod:`.batched`): the same
  steps for many evidence sets at once (``B`` groups of ``K`` particles);
* :func:`proposal_quality` (:mod:`.proposal`): how many particles the image
  model's proposal q(factors, Z | X) leaves a picture's answer resting on.

Every step that runs the SCM is the one walk of :mod:`cvaeq.walk` with a
policy (abduction's, rejuvenation's, prediction's), which alone applies ``do()``.
"""

from .abduction import abduct, fallback_abduct, rejuvenate
from .action import intervene
from .batched import GroupParticles, abduct_groups, group_mean, predict_groups
from .counterfactual import Result, WorldsResult, infer, infer_scenarios, infer_worlds
from .particles import Particles, effective_sample_size
from .prediction import predict
from .proposal import ProposalQuality, proposal_quality

__all__ = [
    "abduct",
    "fallback_abduct",
    "rejuvenate",
    "intervene",
    "predict",
    "infer",
    "infer_scenarios",
    "Result",
    "infer_worlds",
    "WorldsResult",
    "Particles",
    "effective_sample_size",
    "abduct_groups",
    "predict_groups",
    "group_mean",
    "GroupParticles",
    "proposal_quality",
    "ProposalQuality",
]
