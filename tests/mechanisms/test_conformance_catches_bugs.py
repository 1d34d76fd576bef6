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


class FloatClasses(GumbelMax):
    """Returns its classes as floats (the engine would read 0.7 as class 0)."""

    def assign(self, parents, noise):
        return super().assign(parents, noise).double() + 0.5


class OffByOne(GumbelMax):
    """Returns classes 1..size: the last is out of range."""

    def assign(self, parents, noise):
        return super().assign(parents, noise) + 1


class NaNLogProb(GumbelMax):
    def log_prob(self, value, parents):
        return torch.full((value.shape[0],), float("nan"), dtype=torch.float64)


@pytest.mark.parametrize("cls, message", [
    (FloatClasses, "assign\\(\\) returned float64 values"),
    (OffByOne, "assign\\(\\) returned class .* of a node with classes"),
    # its abduct() weighs by its log_prob, so the NaN shows in either
    (NaNLogProb, "(abduct|log_prob)\\(\\) returned NaN"),
])
def test_protocol_check_catches_values_the_engine_cannot_take(cls, message):
    from cvaeq.testing import check_values_follow_the_protocol

    with pytest.raises(AssertionError, match=message):
        check_values_follow_the_protocol(lambda parents, probs: cls(parents, probs), max_examples=3)


class LastWeight(GumbelMax):
    """Remembers the weight of its last abduction and hands it to the next log_prob:
    right only when log_prob follows its own abduct at once."""

    def abduct(self, value, parents):
        a = super().abduct(value, parents)
        self._last = a.log_weight
        return a

    def log_prob(self, value, parents):
        last, self._last = getattr(self, "_last", None), None
        return last if last is not None else super().log_prob(value, parents)


def test_abduction_check_catches_a_weight_kept_between_calls():
    from cvaeq.testing import check_abduction_weighs_as_log_prob

    with pytest.raises(AssertionError, match="weighs otherwise than log_prob"):
        check_abduction_weighs_as_log_prob(lambda parents, probs: LastWeight(parents, probs), max_examples=5)


# ------------------------------------------------------------ image mechanisms


def _broken_levels(change):
    """The discretised-logistic image mechanism with one method replaced by ``change``."""
    from cvaeq.mechanisms.levels_image import discretised_logistic_image

    def factory(**params):
        m = discretised_logistic_image(**params)
        change(m)
        return m

    factory.pixel = "8bit"
    return factory


def test_the_image_checks_catch_noise_that_does_not_replay_the_picture():
    from cvaeq.testing import check_image_replay_gives_the_picture_back

    def prior_noise(m):  # abduction that ignores the picture
        m.abduct = lambda value, parents: (m.noise_prior(value.shape[0]).sample(), m.log_prob(value, parents))

    with pytest.raises(AssertionError, match="changed the picture"):
        check_image_replay_gives_the_picture_back(_broken_levels(prior_noise), max_examples=5)


def test_the_image_checks_catch_a_likelihood_that_does_not_sum_to_one():
    from cvaeq import levels
    from cvaeq.testing import check_image_log_prob_is_normalised

    def half(m):  # one bin's width forgotten: every level's probability halved, say
        m.log_prob = lambda value, parents: (levels.log_prob(value, *m.params(parents)) - 0.7).flatten(1).sum(-1)

    with pytest.raises(AssertionError, match="sum to"):
        check_image_log_prob_is_normalised(_broken_levels(half), max_examples=5)
