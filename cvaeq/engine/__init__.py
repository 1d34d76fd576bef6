"""The engine: Pearl's three steps over weighted particles, generic over mechanisms.

* :func:`abduct` (:mod:`.abduction`): evidence → :class:`Particles` (noise posterior);
  :func:`rejuvenate` redraws resampled copies' noise exactly;
* :func:`intervene` (:mod:`.action`): SCM, ``{node: value}`` → intervened SCM;
* :func:`predict` (:mod:`.prediction`): SCM, particles → ``{node: values}``;
* :func:`infer` (:mod:`.counterfactual`) composes them into a :class:`Result`.
"""

from .abduction import abduct, fallback_abduct, rejuvenate
from .action import intervene
from .counterfactual import Result, infer, query_kind
from .particles import Particles, effective_sample_size
from .prediction import predict

__all__ = [
    "abduct",
    "fallback_abduct",
    "rejuvenate",
    "intervene",
    "predict",
    "infer",
    "Result",
    "query_kind",
    "Particles",
    "effective_sample_size",
]
