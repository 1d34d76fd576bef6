"""The images a run trains and is scored on: rows of a story's world, drawn
from the story and uniformly over the world's grid, with their images.

>>> from cvaeq.story import load_story
>>> images, classes, source, n_story = load_training_data(load_story("default"), 8, seed=0, progress=False,
...                                                       uniform=0.5)
>>> images.shape, classes.shape, n_story
((8, 64, 64), (8, 5), 4)
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["load_training_data", "eval_seed"]


def eval_seed(seed: int) -> int:
    """The seed of a run's held-out sets, derived from (and apart from) its data seed."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def load_training_data(
    story, n: int, seed: int, progress: bool = True, uniform: float = 0.0
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """uint8 images ``(n, H, W)`` of the story's world, classes ``(n, F)``,
    where the images came from, and how many of the first rows follow the story.

    ``resample(story, n_story, seed)`` (what ``cvaeq data resample`` draws) picks the first
    ``n_story = n - round(uniform * n)`` factor tuples; the other ``round(uniform * n)`` are drawn uniformly from
    the world's whole grid (seeded by ``seed``), so that the networks also see
    the combinations the story makes rare (``cvaeq eval`` tests on the uniform
    grid). Images are read from the world's cached grid file when there is one
    (``cvaeq data build``), else rendered.
    """
    from tqdm import tqdm

    from ..data.resample import images_for, resample

    world = story.world
    n_uniform = int(round(uniform * n))
    n_story = n - n_uniform
    parts = []
    if n_story:
        parts.append(resample(story, n_story, seed).classes)
    if n_uniform:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        parts.append(np.stack([rng.integers(0, f.size, n_uniform) for f in world.factors], 1).astype(np.int64))
    classes = np.concatenate(parts)
    from ..data.files import cached_grid

    grid = cached_grid(world)
    source = f"grid file {grid.path}" if grid is not None else "rendered"
    images = np.empty((n, *world.image_shape), dtype=np.uint8)
    bar = tqdm(
        total=n,
        desc=f"images ({source})",
        unit="img",
        unit_scale=True,
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    start = 0
    with bar:
        for chunk in images_for(world.indices_of(classes), grid, world):
            images[start : start + len(chunk)] = chunk
            start += len(chunk)
            bar.update(len(chunk))
    return images, classes, source, n_story
