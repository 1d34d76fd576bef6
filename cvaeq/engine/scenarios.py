"""Several scenarios over one abduction: the multi-world (twin network) counterfactual.

A *scenario* is a set of interventions applied to one draw of the exogenous
noise (the factual scenario has none; the causal literature calls each a
world, :mod:`cvaeq.rung`). A query such as PNS = P(Y_x = y, Y_x' = y') talks
about several scenarios at once, and all of them share one draw of the noise:
:func:`~cvaeq.engine.infer_scenarios` abducts the noise once from the factual
evidence, applies each scenario's interventions to the model and predicts
every scenario from the **same particles** (one abduction, several actions,
several predictions), with the helpers here. The joint of the scenarios is
then the joint over particles: a particle's value in one scenario and in
another come from the same noise. A one-scenario query is the same with one
scenario.

Evidence about an intervened scenario (``Y_x' = y'`` given) is applied after
prediction by weighting: a particle whose prediction in that scenario
disagrees gets weight 0. This conditions the noise posterior on the event
exactly, at the price of the particles it rules out (the effective sample
size says how many were left).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import QueryError
from ..rung import scenario_key
from ..scm import SCM
from .action import intervene
from .particles import Particles, effective_sample_size
from .prediction import predict_changes

__all__ = ["intervened_scms", "predict_scenarios", "weigh_scenario_evidence"]


def _combined_ess(particles: Particles, log_w: Tensor) -> float:
    """The effective sample size of the answer: the factual evidence's and the
    intervened scenarios' evidence's weights together, so that a question
    asked with ``@`` gets the ESS it gets when asked of one scenario.

    Without resampling the final log-weights hold both: Kish's ESS of them is
    exact. After resampling (the abduction's ESS fell below its threshold)
    the particles' weights are equal but they are copies of about
    ``particles.ess`` distinct draws; the scenario evidence then keeps a fraction
    ``ESS(scenario weights) / S`` of them, so the answer rests on
    ``particles.ess * ESS(scenario weights) / S`` (never more than either).
    """
    if not particles.resampled:
        return effective_sample_size(log_w)
    return particles.ess * effective_sample_size(log_w) / particles.num_particles


#: The comparisons of interval events and interval evidence.
COMPARISONS = {
    "<": torch.lt,
    "<=": torch.le,
    ">": torch.gt,
    ">=": torch.ge,
}


def intervened_scms(scm: SCM, scenarios: Iterable[Mapping[str, object]]) -> dict[tuple, SCM | None]:
    """``{scenario key: the SCM under its interventions}`` for each distinct scenario
    (None for the factual one: its values are the abducted particles' own).
    The action step, run before any work so that a bad ``do()`` fails at once."""
    scms: dict[tuple, SCM | None] = {}
    for do in scenarios:
        key = scenario_key(do)
        if key not in scms:
            scms[key] = intervene(scm, do) if do else None
    return scms


def predict_scenarios(scms: Mapping[tuple, SCM | None], particles: Particles) -> dict[tuple, dict[str, Tensor]]:
    """The prediction step, once per distinct scenario, over the same particles:
    ``{scenario key: {node: values [S, ...]}}``."""
    return {
        key: particles.values if intervened is None else predict_changes(intervened, particles)
        for key, intervened in scms.items()
    }


def weigh_scenario_evidence(
    particles: Particles,
    predicted: Mapping[tuple, Mapping[str, Tensor]],
    observed: Sequence[tuple[str, Mapping[str, object], object]],
    grids: Mapping[str, Tensor] | None = None,
) -> tuple[Tensor, float]:
    """The answer's log-weights ``[S]`` and ESS: the abduction's, times 0 where a
    particle's prediction disagrees with an observation ``(node, interventions,
    value)``: a class about an intervened scenario, or an interval ``(op,
    number)`` about any scenario (the node's value, or its grid number from
    ``grids``, compared with the number: :data:`COMPARISONS`).

    Without such observations they are the abduction's own, its ``log_weights``
    and ``ess``: a question asked of one scenario gets exactly what its
    abduction says.
    """
    if not observed:
        return particles.log_weights, particles.ess
    log_w = particles.log_weights
    for node, do, value in observed:
        got = predicted[scenario_key(do)][node]
        if isinstance(value, tuple):
            op, number = value
            numbers = grids[node][got.long()] if grids and node in grids else got.double()
            same = COMPARISONS[op](numbers, float(number))
        else:
            same = got.long() == int(value)  # type: ignore[call-overload]  # a class
        log_w = log_w + torch.where(same, 0.0, float("-inf")).double()
    if not bool(torch.isfinite(log_w).any()):
        raise QueryError(
            f"no particle of {particles.num_particles} satisfies the evidence about the intervened world(s) "
            "or the interval evidence; "
            "it is impossible or rare: use more particles (--samples)"
        )
    return log_w, _combined_ess(particles, log_w)
