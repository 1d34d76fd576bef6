"""Shared helpers of categorical (table-driven) mechanisms.

A categorical family is built from a probability table ``probs`` of shape
``[*parent sizes, size]`` (parents in the order given); a node's value is an
``int64`` class tensor ``[S]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import MechanismError

__all__ = ["as_table", "rows"]


def as_table(parents: Sequence[str], probs, *, dtype=torch.float64) -> Tensor:
    """``probs`` as a float tensor, checked against ``parents`` (rows sum to 1)."""
    table = torch.as_tensor(probs, dtype=dtype)
    if table.dim() != len(parents) + 1:
        raise MechanismError(
            f"a probability table for parents {tuple(parents)} needs {len(parents) + 1} dimensions "
            f"(one per parent, then the classes), got shape {tuple(table.shape)}"
        )
    if table.shape[-1] < 1 or bool((table < 0).any()) or not bool(torch.isfinite(table).all()):
        raise MechanismError("probabilities must be finite and non-negative, with at least one class")
    if not torch.allclose(table.sum(-1), torch.ones((), dtype=dtype), atol=1e-5):
        raise MechanismError("each row of a probability table must sum to 1; rescale the rows")
    return table


def rows(table: Tensor, parent_names: Sequence[str], parents: Mapping[str, Tensor], num: int) -> Tensor:
    """The ``[S, size]`` rows of ``table`` selected by the parents' classes."""
    if not parent_names:
        return table.expand(num, table.shape[-1])
    try:
        idx = tuple(parents[p].long() for p in parent_names)
    except KeyError as e:
        raise MechanismError(f"parent {e.args[0]!r} has no value; the SCM must assign parents first") from None
    return table[idx].expand(num, table.shape[-1])
