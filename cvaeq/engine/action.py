"""Action: ``do(v = a)`` replaces v's mechanism by the constant ``a``.

:func:`intervene` returns a new SCM carrying the checked constants; the
walk (:mod:`cvaeq.walk`), which every step running the SCM goes through,
applies them. The factual SCM is left as it was.

>>> from cvaeq.story import load_story
>>> from cvaeq.scm import build_scm
>>> world = intervene(build_scm(load_story()), {"shape": 0})
>>> world.sample(3, seed=0)["shape"].tolist()
[0, 0, 0]
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from ..errors import QueryError
from ..mechanisms.base import checked_value, is_intervenable
from ..scm import SCM

__all__ = ["intervene"]


def _constant(scm: SCM, node: str, value: object) -> Tensor:
    m = scm.mechanisms[node]
    t = checked_value(m, node, value, lambda: f"do({node}={value!r})")
    if t.dim() not in (m.event_dim, m.event_dim + 1):
        raise QueryError(f"do({node}=...) needs a value with {m.event_dim} dimension(s), got shape {tuple(t.shape)}")
    return t


def intervene(scm: SCM, interventions: Mapping[str, object]) -> SCM:
    """The SCM under ``do(node = value, ...)``.

    Values are classes (``int``) for categorical nodes, tensors for others
    (unbatched, or batched over particles). Unknown nodes, values off the
    domain and nodes whose mechanism forbids intervention (the image X) are a
    :class:`~cvaeq.errors.QueryError`.
    """
    data = dict(scm.interventions)
    for node, value in interventions.items():
        if node not in scm.graph:
            raise QueryError(f"do() on unknown node {node!r}; known: {', '.join(scm.nodes)}")
        if not is_intervenable(scm.mechanisms[node]):
            raise QueryError(
                f"do() on {node!r} is not allowed: its mechanism cannot be replaced by a constant "
                "(intervene on the factors or Z instead)"
            )
        data[node] = _constant(scm, node, value)
    return scm.with_interventions(data)
