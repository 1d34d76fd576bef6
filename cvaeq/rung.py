"""The rung of Pearl's ladder a question stands on: its one definition.

A question is about one or more **scenarios**: sets of interventions applied
to one draw of the exogenous noise (the causal literature calls each a
*world*; cvaeq keeps "world" for a world of pictures, :mod:`cvaeq.world`).
The **factual** scenario has no interventions; it is the one evidence
written without ``@`` describes. The rung follows from the scenarios the
question's targets and observations are in:

* one scenario, the factual one: **observational**, ``P(shape)`` (the prior)
  or ``P(shape | X=img)`` (a posterior);
* one scenario, an intervened one: **interventional**, ``P(shape | do(scale=1))``,
  also with evidence about that scenario (``P(scale @ do(shape=square) | posX
  @ do(shape=square) = 0.5)``, conditioning after the intervention);
* several scenarios: **counterfactual**, evidence about the factual scenario
  and a target in an intervened one (``P(X | do(shape=square), X=img)``), or
  targets in two scenarios (PNS, ``P(scale, scale @ do(shape=square))``).

The query resolution (``ResolvedQuery.rung``), the engine's result
(``Result.rung``), the answer (``Answer.rung``, ``"rung"`` in ``--json``, the
text answer and the explorer) all read it from :func:`rung`.

>>> rung([{}]), rung([{}], evidence=True), rung([{"shape": 0}])
('observational', 'observational', 'interventional')
>>> rung([{"shape": 0}], evidence=True), rung([{"shape": 0}, {"shape": 2}]), rung([{}, {"shape": 0}])
('counterfactual', 'counterfactual', 'counterfactual')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = ["Rung", "RUNGS", "rung", "scenario_key"]

Rung = Literal["observational", "interventional", "counterfactual"]
#: The rungs, from the lowest.
RUNGS: tuple[Rung, ...] = ("observational", "interventional", "counterfactual")


def _plain(value: object) -> object:
    """A hashable form of an intervention's value: a number, or nested tuples of a tensor's or array's."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def scenario_key(interventions: Mapping[str, object]) -> tuple:
    """A hashable key naming a scenario by its interventions (order-free; ``()`` is the factual one).

    Values may be classes, numpy or torch values (batched too): equal settings give equal keys.

    >>> scenario_key({"shape": 0, "scale": 5}) == scenario_key({"scale": 5, "shape": 0}), scenario_key({})
    (True, ())
    """
    return tuple(sorted((node, _plain(value)) for node, value in interventions.items()))


def rung(scenarios: Iterable[Mapping[str, object]], evidence: bool = False) -> Rung:
    """The rung of a question whose targets and observations are in ``scenarios``.

    :param scenarios: the interventions of the scenario of each target and of
        each observation about an intervened scenario (an empty mapping: the
        factual scenario); repeats count once.
    :param evidence: whether the question observes the factual scenario
        (evidence written without ``@``).
    """
    keys = {scenario_key(s) for s in scenarios}
    if evidence:
        keys.add(())
    if len(keys) > 1:
        return "counterfactual"
    return "interventional" if any(keys) else "observational"
