"""Gumbel-max: the top-down abducted noise is the posterior that rejection sampling gives."""

import numpy as np
import pytest
import torch
from scipy import stats

from cvaeq.errors import MechanismError
from cvaeq.mechanisms import GumbelMax


@pytest.mark.parametrize("k", [0, 2])
def test_abducted_noise_matches_rejection_sampling(k):
    m = GumbelMax((), torch.tensor([0.6, 0.3, 0.1]))
    torch.manual_seed(k)
    prior = m.noise_prior(60000).sample()
    kept = prior[m.assign({}, prior) == k]  # rejection: prior noise that reproduces class k
    abducted = m.abduct(torch.full((20000,), k), {}).noise
    for j in range(3):  # each coordinate's distribution agrees (two-sample KS)
        assert stats.ks_2samp(kept[:, j].numpy(), abducted[:, j].numpy()).pvalue > 1e-3
    gap = lambda g: (g[:, 1] - g[:, 0]).numpy()  # and so does a joint statistic
    assert stats.ks_2samp(gap(kept), gap(abducted)).pvalue > 1e-3


def test_abduction_with_parents_replays_every_particle():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    m = GumbelMax(("a",), probs)
    a = torch.randint(0, 2, (5000,))
    v = torch.randint(0, 3, (5000,))
    assert torch.equal(m.assign({"a": a}, m.abduct(v, {"a": a}).noise), v)
    assert torch.allclose(m.log_prob(v, {"a": a}), probs.double().log()[a, v])


def test_zero_probability_classes_never_win_and_keep_finite_noise():
    m = GumbelMax((), torch.tensor([0.5, 0.0, 0.5]))
    g = m.abduct(torch.tensor([2] * 1000), {}).noise
    assert bool(torch.isfinite(g).all())
    assert set(m.assign({}, g).tolist()) == {2}
    assert float(m.log_prob(torch.tensor([1]), {})) == float("-inf")


def test_bad_tables_are_mechanism_errors():
    with pytest.raises(MechanismError, match="needs 2 dimensions"):
        GumbelMax(("a",), torch.tensor([0.5, 0.5]))
    with pytest.raises(MechanismError, match="sum to 1"):
        GumbelMax((), torch.tensor([0.5, 0.6]))
    with pytest.raises(MechanismError, match="non-negative"):
        GumbelMax((), np.array([1.5, -0.5]))
