"""The random streams of an evaluation: the seed of each sub-task, derived from
its batch's seed, so that every batch (and every process of a torchrun
launch) draws the same numbers whatever else runs, and binary and 8-bit
evaluations share one rule."""

from __future__ import annotations

import numpy as np

__all__ = ["BATCH_STREAM", "STORY_STREAM", "sub_seed"]

#: Tags the random stream of a batch (:func:`sub_seed`), apart from its sub-tasks' seeds.
BATCH_STREAM = 0xBA7C
#: Tags the seeds of a batch's story abductions (the true counterfactuals).
STORY_STREAM = 0x5707


def sub_seed(seed: int, *parts: int) -> int:
    """A seed for one sub-task, derived from the batch's seed (distinct per sub-task).

    >>> sub_seed(0, BATCH_STREAM) == sub_seed(0, BATCH_STREAM), sub_seed(0, 1) != sub_seed(0, 2)
    (True, True)
    """
    return int(np.random.default_rng([seed, *parts]).integers(2**31))
