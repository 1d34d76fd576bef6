import numpy as np

from cvaeq.worlds.dsprites.factors import VALUES
from cvaeq.worlds.dsprites.symmetry import PERIODS, orientation_equivalence, same_orientation


def test_equivalence_is_reflexive_and_symmetric():
    eq = orientation_equivalence()
    for s in range(3):
        assert eq[s].diagonal().all()
        assert (eq[s] == eq[s].T).all()


def test_zero_and_two_pi_are_the_same_orientation_for_every_shape():
    eq = orientation_equivalence()
    assert eq[:, 0, 39].all()


def test_a_heart_has_no_other_symmetry_but_a_square_repeats_every_quarter_turn():
    eq = orientation_equivalence()
    theta = VALUES["orientation"]
    assert eq[2].sum() == 40 + 2  # only 0 ~ 2*pi
    k = 3
    for j in np.flatnonzero(eq[0, k]):
        d = (theta[j] - theta[k]) % PERIODS[0]
        assert min(d, PERIODS[0] - d) <= (theta[1] - theta[0]) / 2 + 1e-9
    assert len(np.flatnonzero(eq[0, k])) >= 4


def test_same_orientation_is_vectorised():
    ok = same_orientation(np.array([0, 2, 1]), np.array([10, 20, 39]), np.array([0, 0, 0]))
    assert ok.tolist() == [True, False, True]


def test_exact_orientation_loss_charges_a_symmetric_copy_that_the_symmetric_loss_forgives():
    import torch

    from cvaeq.worlds.dsprites.factors import FACTORS, SIZES
    from cvaeq.model.cvae import classification_loglik

    eq = orientation_equivalence()
    copy = int(np.flatnonzero(eq[0, 3])[-1])  # a square at class 3, read as its quarter-turned copy
    assert copy != 3
    logits = {f: torch.zeros(1, SIZES[f]) for f in FACTORS}
    logits["orientation"][0, copy] = 30.0
    classes = torch.tensor([[0, 2, 3, 10, 10]])
    symmetric = classification_loglik(logits, classes, {"orientation": (0, torch.from_numpy(eq))})["orientation"]
    exact = classification_loglik(logits, classes)["orientation"]
    assert float(symmetric) > -1e-6 and float(exact) < -25.0
