"""The random streams of an evaluation: the seed of each sub-task, derived from
its batch's seed, so that every batch (and every process of a torchrun
launch) draws the same numbers whatever else runs, and binary and 8-bit
evaluations share one rule."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

__all__ = ["BATCH_STREAM", "STORY_STREAM", "sub_seed", "seeded_batches"]

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


def seeded_batches(
    n: int, batch: int, seed: int, progress: bool, starts: Iterable[int] | None = None
) -> Iterator[slice]:
    """The batches of ``n`` test items (those starting at ``starts``, default every ``batch``-th),
    as slices, under ``torch.no_grad()`` and a forked RNG, with a progress bar over the items:
    before each batch torch's CPU generator is seeded from (seed, its first item) alone, so a
    batch gives the same scores whatever ran before it (or whichever process of a torchrun
    launch runs it). Every evaluation scores its test items this way.

    >>> [(s.start, s.stop) for s in seeded_batches(5, 2, 0, progress=False)]
    [(0, 2), (2, 4), (4, 5)]
    """
    from tqdm import tqdm

    starts = list(range(0, n, batch) if starts is None else starts)
    total = sum(min(lo + batch, n) - lo for lo in starts)
    with (
        torch.no_grad(),
        torch.random.fork_rng(devices=[]),
        tqdm(total=total, desc="eval", unit="img", disable=not progress, leave=False) as bar,
    ):
        for lo in starts:
            torch.default_generator.manual_seed(sub_seed(seed, lo, BATCH_STREAM))  # CPU only, as in engine.infer
            sl = slice(lo, min(lo + batch, n))
            yield sl
            bar.update(sl.stop - sl.start)
