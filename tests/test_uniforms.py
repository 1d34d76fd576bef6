"""The picture-sized uniforms: deterministic whatever the thread count, on the lattice they claim, uniform."""

import math

import pytest
import torch

from cvaeq.uniforms import BLOCK, uniforms


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_same_seed_gives_the_same_uniforms_on_one_two_or_three_threads(dtype):
    shape = (7, 3 * BLOCK // 7 + 5)  # blocks that straddle rows, and a short last block
    draws = []
    for threads in (1, 2, 3):
        torch.manual_seed(11)
        draws.append(uniforms(shape, dtype, threads=threads))
    assert all(torch.equal(draws[0], d) for d in draws[1:])
    assert draws[0].shape == shape and draws[0].dtype == dtype
    torch.manual_seed(12)
    assert not torch.equal(draws[0], uniforms(shape, dtype))  # another seed, other numbers


@pytest.mark.parametrize("dtype, bits", [(torch.float32, 24), (torch.float64, 53)])
def test_uniforms_are_whole_multiples_of_their_step_in_zero_one(dtype, bits):
    torch.manual_seed(0)
    u = uniforms((2 * BLOCK + 3,), dtype)
    k = u * 2.0**bits
    assert bool((k == k.round()).all()) and 0 <= float(u.min()) and float(u.max()) < 1


def test_uniforms_are_uniform_and_the_blocks_independent():
    """Mean, variance and a 16-bin histogram of 2 million float32 uniforms within 5 standard
    errors of Uniform(0, 1)'s; neighbouring blocks (streams) uncorrelated, and unlike each other."""
    torch.manual_seed(0)
    n = 16 * BLOCK
    u = uniforms((n,)).double()
    assert abs(float(u.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(float(u.var()) - 1 / 12) < 5 * math.sqrt(1 / 180 / n)
    counts = torch.histc(u, bins=16, min=0, max=1)
    assert float((counts - n / 16).abs().max()) < 5 * math.sqrt(n / 16)
    blocks = u.reshape(16, BLOCK)
    corr = torch.corrcoef(blocks)[torch.triu_indices(16, 16, 1).unbind()]
    assert float(corr.abs().max()) < 5 / math.sqrt(BLOCK)


def test_uniforms_are_float_only():
    with pytest.raises(TypeError, match="float32 or float64"):
        uniforms((3,), torch.int64)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork here")
def test_a_forked_child_draws_its_uniforms_in_the_background_without_waiting_forever():
    """The background filling's pool is the parent's in a forked child, where its thread does not
    exist: the child makes its own (a task handed to the parent's would never run)."""
    import multiprocessing

    from cvaeq.uniforms import uniforms_later

    uniforms_later((4, 5))()  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        shape = pool.apply_async(_draw_later_in_child).get(timeout=60)
    assert shape == (3, 7)


def _draw_later_in_child():
    from cvaeq.uniforms import uniforms_later

    return tuple(uniforms_later((3, 7))().shape)
