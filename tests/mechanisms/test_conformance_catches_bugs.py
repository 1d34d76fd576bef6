"""The conformance suite fails on families that break the invariants (it can fail)."""

import pytest
import torch

import cvaeq.testing.checks
from cvaeq.mechanisms.gumbel import GumbelMax
from cvaeq.testing import (
    check_interventional_matches_enumeration,
    check_posterior_matches_rejection,
    check_replay_reproduces_factual,
)


@pytest.fixture(autouse=True)
def _no_shrinking(monkeypatch):
    monkeypatch.setattr(cvaeq.testing.checks, "SHRINK", False)


class StickyGumbel(GumbelMax):
    """Reproduces the factual class, but with a far too confident posterior: it never switches."""

    def abduct(self, value, parents):
        logits = self._logits(parents, value.shape[0])
        won = torch.nn.functional.one_hot(value.long(), self.size).double()
        return 5.0 * won - logits


class PriorNoise(GumbelMax):
    """Ignores the evidence when abducting: replay does not reproduce the factual world."""

    def abduct(self, value, parents):
        return self.noise_prior(value.shape[0]).sample()


class Flipped(GumbelMax):
    """Assigns the reverse class order: its samples do not follow its table."""

    def assign(self, parents, noise):
        return self.size - 1 - super().assign(parents, noise)


def test_rejection_check_catches_a_wrong_posterior():
    with pytest.raises(AssertionError, match="rejection"):
        check_posterior_matches_rejection(lambda parents, probs: StickyGumbel(parents, probs), max_examples=10)


def test_replay_check_catches_abduction_ignoring_evidence():
    with pytest.raises(AssertionError, match="replaying"):
        check_replay_reproduces_factual(lambda parents, probs: PriorNoise(parents, probs), max_examples=5)


def test_enumeration_check_catches_a_mechanism_off_its_table():
    with pytest.raises(AssertionError, match="exact"):
        check_interventional_matches_enumeration(lambda parents, probs: Flipped(parents, probs), max_examples=5)
