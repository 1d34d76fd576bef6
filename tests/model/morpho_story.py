"""The registered morphomnist story (DeepSCM's SCM) with a smaller Z, for the model's tests.

A test trains in seconds with a latent of a few dimensions; the shipped
story's is 16. The fixture writes the registered story's text with another
``latent_dim`` to a file in the test's temp folder and loads it from there,
so training, checkpoints and ``--story PATH`` see an ordinary story file.
"""

from __future__ import annotations

import pytest

from cvaeq.story import Story, load_story


@pytest.fixture
def morpho_story(tmp_path):
    """``make(latent_dim)``: the morphomnist story with that latent, loaded from a file (its ``source``)."""

    def make(latent_dim: int = 4) -> Story:
        text = load_story("morphomnist").text
        assert "\nlatent_dim = 16\n" in text
        path = tmp_path / f"morphomnist_z{latent_dim}.toml"
        path.write_text(text.replace("\nlatent_dim = 16\n", f"\nlatent_dim = {latent_dim}\n"))
        return load_story(path)

    return make
