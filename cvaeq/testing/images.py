"""The invariants every image mechanism must satisfy (``register_image_mechanisms``).

An image mechanism plugin runs them against its own factory in its tests::

    from cvaeq.testing import IMAGE_CHECKS

    @pytest.mark.parametrize("check", IMAGE_CHECKS.values(), ids=IMAGE_CHECKS.keys())
    def test_conformance(check):
        check(my_image_mechanism)        # or the registered name

Each check builds the mechanism from a random stand-in image model of the
factory's pixel kind (``pixel``: Bernoulli logits for ``"binary"``, a
location and log-scale per pixel and channel for ``"8bit"``) and runs a
property test (hypothesis, derandomised) over random pictures and decoder
outputs, confident ones included.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..mechanisms.base import abduction

__all__ = [
    "IMAGE_CHECKS",
    "check_image_mechanism",
    "check_image_replay_gives_the_picture_back",
    "check_image_log_prob_is_normalised",
]


def _factory(mechanism: str | Callable) -> Callable:
    if isinstance(mechanism, str):
        from ..plugins import get_image_mechanism

        return get_image_mechanism(mechanism)
    return mechanism


class _RandomModel:
    """A stand-in image model: fixed random decoder outputs of the right kind, trivial proposals."""

    latent_dim = 1

    def __init__(self, pixel: str, shape: tuple[int, ...], particles: int, rng: np.random.Generator):
        self.pixel = pixel
        size = (particles, *shape)
        if pixel == "8bit":
            self.loc = torch.as_tensor(rng.uniform(-0.5, 1.5, size), dtype=torch.float32)
            self.log_scale = torch.as_tensor(rng.uniform(-8, 1, size), dtype=torch.float32)
        else:
            self.logits = torch.as_tensor(rng.normal(0, 1, size) * rng.choice([1, 10, 40], size), dtype=torch.float32)

    def pixel_levels(self, classes, z):
        return self.loc, self.log_scale

    def pixel_logits(self, classes, z):
        return self.logits

    def decode_probs(self, classes, z):
        return torch.sigmoid(self.logits)

    def factor_logits(self, x):
        return {"f": torch.zeros(len(x), 1)}

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


def _build(factory, seed: int, particles: int = 3):
    rng = np.random.default_rng(seed)
    pixel = factory.pixel
    shape = (
        (int(rng.choice([1, 3])), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        if pixel == "8bit"
        else (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    )
    model = _RandomModel(pixel, shape, particles, rng)
    m = factory(image_model=model, parents=("f", "Z"), factors=("f",), shape=shape)
    parents = {"f": torch.zeros(particles, dtype=torch.long), "Z": torch.zeros(particles, 1)}
    top = 255 if pixel == "8bit" else 1
    picture = torch.as_tensor(
        rng.integers(0, top + 1, (particles, *shape)), dtype=torch.uint8 if pixel == "8bit" else torch.float32
    )
    return m, parents, picture


def _property(max_examples: int):
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def check_image_replay_gives_the_picture_back(mechanism, max_examples: int = 40) -> None:
    """The abducted noise replays the observed picture byte for byte (a null
    intervention returns the evidence), for any picture and decoder output;
    the weight ``abduct`` gives with the noise agrees with ``log_prob``
    (mechanisms written to the older contract, ``abduct`` giving the noise
    alone, are read through :func:`cvaeq.mechanisms.base.abduction`)."""
    factory = _factory(mechanism)

    @_property(max_examples)
    @given(st.integers(0, 2**32 - 1))
    def run(seed):
        m, parents, picture = _build(factory, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed % 2**31)
            noise, weight = abduction(m, picture, parents)
            replay = m.assign(parents, noise)
            assert torch.equal(replay, picture.to(replay.dtype)), "replaying the abducted noise changed the picture"
            lp = m.log_prob(picture, parents)
            assert bool(torch.isfinite(weight).all()) and bool(torch.isfinite(lp).all())
            torch.testing.assert_close(weight.double(), lp.double(), rtol=1e-4, atol=1e-2)

    run()


def check_image_log_prob_is_normalised(mechanism, max_examples: int = 20) -> None:
    """On a one-pixel picture, the probabilities of every value sum to 1, and a
    picture drawn from the noise prior is of the pixel kind and shape."""
    factory = _factory(mechanism)

    @_property(max_examples)
    @given(st.integers(0, 2**32 - 1))
    def run(seed):
        rng = np.random.default_rng(seed)
        pixel = factory.pixel  # type: ignore[attr-defined]  # every image-mechanism factory says its pixel kind
        values = 256 if pixel == "8bit" else 2
        shape = (1, 1, 1) if pixel == "8bit" else (1, 1)
        model = _RandomModel(pixel, shape, 1, rng)
        if pixel == "8bit":
            model.loc, model.log_scale = model.loc.expand(values, *shape), model.log_scale.expand(values, *shape)
        else:
            model.logits = model.logits.expand(values, *shape)
        m = factory(image_model=model, parents=("f", "Z"), factors=("f",), shape=shape)
        parents = {"f": torch.zeros(values, dtype=torch.long), "Z": torch.zeros(values, 1)}
        every = torch.arange(values).reshape(values, *shape)
        every = every.to(torch.uint8) if pixel == "8bit" else every.float()
        total = float(m.log_prob(every, parents).double().exp().sum())
        assert abs(total - 1) < 1e-4, f"the probabilities of every value of a pixel sum to {total}"
        drawn = m.assign(parents, m.noise_prior(values).sample())
        assert tuple(drawn.shape) == (values, *shape)
        if pixel == "8bit":
            assert drawn.dtype == torch.uint8
        else:
            assert bool(((drawn == 0) | (drawn == 1)).all())

    run()


#: The image-mechanism checks by name.
IMAGE_CHECKS: dict[str, Callable[..., None]] = {
    "replay_gives_the_picture_back": check_image_replay_gives_the_picture_back,
    "log_prob_is_normalised": check_image_log_prob_is_normalised,
}


def check_image_mechanism(mechanism, **kwargs) -> None:
    """Run every image-mechanism check on ``mechanism`` (a factory with ``pixel``, or a registered name)."""
    for check in IMAGE_CHECKS.values():
        check(mechanism, **kwargs)
