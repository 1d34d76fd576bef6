"""Held-out test images: drawn uniformly from the story's world's full grid.

Not from the story: uniform draws test the rare combinations (in dSprites, a
big heart high up on the left) as often as the common ones. Images are drawn
by the world's renderer (``world.render_checked``), the ground truth. Grid
points the story gives probability 0 are skipped: their counterfactuals are
undefined.

The grid is finite (dSprites: 737,280 images), so a uniform draw may also
occur in a training set; "held out" means drawn independently of training,
by its own seed.

>>> from cvaeq.story import load_story
>>> story = load_story()
>>> classes = draw_heldout(3, seed=0, story=story)
>>> classes.shape, classes.dtype, tuple(render_float(classes, story.world).shape)
((3, 5), dtype('int64'), (3, 64, 64))
"""

from __future__ import annotations

import numpy as np

from ..errors import StoryError

__all__ = ["draw_heldout", "render_float"]


def draw_heldout(n: int, seed: int, story) -> np.ndarray:
    """``(n, F)`` int64 factor classes, uniform over the world's grid points the story allows."""
    world = story.world
    rng = np.random.default_rng([seed, 0xE7A1])
    out = np.zeros((0, len(world.names)), dtype=np.int64)
    for _ in range(100):
        classes = world.classes_array_of(rng.integers(0, world.n_images, size=max(n, 16)))
        ok = np.isfinite(story.log_prob(classes))
        out = np.concatenate([out, classes[ok]])[:n]
        if len(out) == n:
            return out
    raise StoryError("the story gives almost every grid image probability 0; no test images could be drawn")


def render_float(classes: np.ndarray, world):
    """The world's images of ``classes`` as a float32 torch tensor of 0/1 ``(N, H, W)``."""
    import torch

    return torch.from_numpy(world.render_checked(np.asarray(classes, dtype=np.int64)).astype(np.float32))
