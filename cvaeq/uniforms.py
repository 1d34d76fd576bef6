"""Uniforms for picture-sized draws: PCG64 streams, one per block, filled on torch's threads.

An image counterfactual on the 64×64×3 colour world draws one uniform per
pixel, channel and particle: 1.2 million for 100 particles. ``torch.rand``
fills them from one Mersenne Twister on one thread, 5 to 10 ms on this
project's 2-core machine, an eighth of the whole question
(``benchmarks/colour_counterfactual.py``). :func:`uniforms` fills them from
numpy's PCG64 (O'Neill 2014; numpy's default generator) instead, cut into
blocks of :data:`BLOCK` values, each block its own stream
(``SeedSequence.spawn``: independent streams by construction), filled on as
many threads as torch uses (numpy lets go of the GIL while it fills): 2.2 ms
on two threads, 2.5 ms on one (1.2 million float32 uniforms, 2026-12-07).

Deterministic: the streams are seeded by one draw from torch's global
generator (so ``torch.manual_seed``, which every command's ``--seed`` sets,
decides them), and which block gets which stream depends on the block's
place alone, never on the thread count, so the same seed gives the same
numbers on one thread or eight. float32 uniforms have numpy's 24 bits,
``k / 2^24`` for ``k`` in ``0 .. 2^24 - 1``, as ``torch.rand``'s; float64 ones
53 bits.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> a = uniforms((3, 100_000))
>>> _ = torch.manual_seed(0)
>>> bool(torch.equal(a, uniforms((3, 100_000), threads=1))), a.dtype, 0 <= float(a.min()) < float(a.max()) < 1
(True, torch.float32, True)
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

__all__ = ["uniforms", "uniforms_later", "BLOCK"]

#: Values per stream: 2^17 (a 0.5 MB block of float32, filled in ~0.4 ms), so that a
#: picture-sized draw has blocks enough for two or more threads and few streams to seed.
BLOCK = 1 << 17

_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _forget_pools() -> None:
    """In a forked child: its parent's pools have no threads there (a task handed to one would
    wait forever), so the child makes its own."""
    global _lock
    _pools.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _executor(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` workers, kept between draws (one per count asked for)."""
    with _lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="cvaeq-uniforms")
        return _pools[threads]


def uniforms(
    shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32, threads: int | None = None
) -> Tensor:
    """Uniforms in [0, 1) of ``shape`` and ``dtype`` (float32 or float64), the streams seeded from
    torch's global generator (one draw from it), filled on ``threads`` threads (default: torch's):
    each raw 64-bit word gives two float32 uniforms (its two 32-bit halves' low 24 bits,
    ``k / 2^24``) or one float64 (its low 53 bits, ``k / 2^53``)."""
    return _filled(shape, dtype, _seed(dtype), torch.get_num_threads() if threads is None else threads)


def uniforms_later(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32) -> Callable[[], Tensor]:
    """:func:`uniforms` filled in the background: the seed is drawn now (the numbers are those
    ``uniforms`` called here would give), the filling runs on one thread of its own while the
    caller goes on (an image question decodes and weighs its particles meanwhile, and on a
    2-core machine torch's second thread idles between its operations), and the function
    returned waits for them.

    >>> _ = torch.manual_seed(5)
    >>> later = uniforms_later((2, 3))
    >>> _ = torch.manual_seed(5)
    >>> bool(torch.equal(later(), uniforms((2, 3))))
    True
    """
    seed = _seed(dtype)
    return _executor(1).submit(_filled, shape, dtype, seed, 1).result


def _seed(dtype: torch.dtype) -> int:
    """The streams' seed, one draw from torch's global generator (after checking ``dtype``)."""
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"uniforms are float32 or float64, not {dtype}")
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))


def _filled(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype, seed: int, workers: int) -> Tensor:
    """The uniforms of ``seed``: block ``i`` from stream ``i`` of ``SeedSequence(seed)``, filled on
    ``workers`` threads (which thread fills which block changes no number)."""
    n = math.prod(shape)
    single = dtype == torch.float32
    blocks = -(-n // BLOCK)
    streams = np.random.SeedSequence(seed).spawn(blocks)
    out = torch.empty(n, dtype=dtype)
    flat = out.numpy()

    def fill(i: int) -> None:  # block i (numpy lets go of the GIL while it draws and converts)
        part = flat[i * BLOCK : (i + 1) * BLOCK]
        words = np.random.PCG64(streams[i]).random_raw((part.shape[0] + 1) // 2 if single else part.shape[0])
        # the low 24 (53) bits, whole numbers below 2^24 (2^53): exact in the uniforms' precision
        bits = words.view(np.uint32)[: part.shape[0]] if single else words
        np.bitwise_and(bits, (1 << 24) - 1 if single else (1 << 53) - 1, out=bits)
        np.multiply(
            bits, part.dtype.type(2.0**-24 if single else 2.0**-53), out=part, dtype=part.dtype, casting="unsafe"
        )

    if workers <= 1 or blocks == 1:
        for i in range(blocks):
            fill(i)
    else:
        list(_executor(workers).map(fill, range(blocks)))
    return out.reshape(shape)
