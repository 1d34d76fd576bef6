"""Held-out test images: drawn uniformly from the full dSprites grid.

Not from the story: uniform draws test the rare combinations (a big heart
high up on the left) as often as the common ones. Images are rendered with
:func:`cvaeq.worlds.dsprites.render.render`. Grid points the story gives probability 0
(none in the default story, whose tables all have a floor) are skipped: their
counterfactuals are undefined.

The grid is finite (737,280 images), so a uniform draw may also occur in a
training set; "held out" means drawn independently of training, by its own seed.

>>> from cvaeq.story import load_story
>>> classes = draw_heldout(3, seed=0, story=load_story())
>>> classes.shape, classes.dtype
((3, 5), dtype('int64'))
"""

from __future__ import annotations

import numpy as np

from ..worlds.dsprites.factors import N_IMAGES, classes_array_of
from ..worlds.dsprites.render import render
from ..errors import StoryError

__all__ = ["draw_heldout", "render_float"]


def draw_heldout(n: int, seed: int, story) -> np.ndarray:
    """``(n, 5)`` int64 factor classes, uniform over the grid points the story allows."""
    rng = np.random.default_rng([seed, 0xE7A1])
    out = np.zeros((0, 5), dtype=np.int64)
    for _ in range(100):
        classes = classes_array_of(rng.integers(0, N_IMAGES, size=max(n, 16)))
        ok = np.isfinite(story.log_prob(classes))
        out = np.concatenate([out, classes[ok]])[:n]
        if len(out) == n:
            return out
    raise StoryError("the story gives almost every grid image probability 0; no test images could be drawn")


def render_float(classes: np.ndarray):
    """Rendered images ``(N, 64, 64)`` as a float32 torch tensor of 0/1."""
    import torch

    return torch.from_numpy(render(np.asarray(classes, dtype=np.int64)).astype(np.float32))
