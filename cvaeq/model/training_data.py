"""The images a run trains and is scored on: rows of a story's world, drawn
from the story and uniformly over the world's grid, with their images; or,
for a world without a renderer, its labelled pictures (the train part, or
the held-out test part for scoring).

>>> from cvaeq.story import load_story
>>> images, classes, source, n_story = load_training_data(load_story("default"), 8, seed=0, progress=False,
...                                                       uniform=0.5)
>>> images.shape, classes.shape, n_story
((8, 64, 64), (8, 5), 4)
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["load_training_data", "labelled_training_data", "eval_seed"]


def eval_seed(seed: int) -> int:
    """The seed of a run's held-out sets, derived from (and apart from) its data seed."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def load_training_data(
    story, n: int, seed: int, progress: bool = True, uniform: float = 0.0, part: str = "train"
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """uint8 images ``(n, H, W)`` of the story's world, classes ``(n, F)``,
    where the images came from, and how many of the first rows follow the story.

    ``resample(story, n_story, seed)`` (what ``cvaeq data resample`` draws) picks the first
    ``n_story = n - round(uniform * n)`` factor tuples; the other ``round(uniform * n)`` are drawn uniformly from
    the world's whole grid (seeded by ``seed``), so that the networks also see
    the combinations the story makes rare (``cvaeq eval`` tests on the uniform
    grid). Images are read from the world's cached grid file when there is one
    (``cvaeq data build``), else rendered.

    A world without a renderer has nothing to draw: its labelled pictures are
    read instead (:func:`labelled_training_data`; ``part``: ``"train"``, or
    ``"test"`` for the held-out sets a run is scored on), and ``uniform`` is
    ignored. Grid worlds ignore ``part`` (their held-out sets are fresh draws).
    """
    from tqdm import tqdm

    from ..data.resample import images_for, resample

    world = story.world
    if not world.has_renderer:
        return labelled_training_data(world, n, seed, part)
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


def labelled_training_data(
    world, n: int, seed: int, part: str = "train", source=None
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """The ``part`` (``"train"`` or ``"test"``) of a renderer-less world's labelled
    pictures, as :func:`load_training_data` returns rows: uint8 images
    ``(m, *image_shape)``, float64 factor values ``(m, F)`` in the world's
    order (int64 classes where it has no continuous factor), where they came
    from, and ``m`` (every row is real data).

    ``m = min(n, size of the part)``: a part smaller than ``n`` is taken
    whole; a larger one gives ``n`` rows drawn without replacement (seeded by
    ``seed``), kept in row order. ``source``: as
    :func:`cvaeq.data.labelled.load_labelled` (default: the world's shipped files).

    >>> from cvaeq.world import get_world
    >>> images, factors, source, m = labelled_training_data(get_world("morphomnist"), 10**6, seed=0)
    >>> images.shape, factors.dtype, m, source.endswith("train part, rows 0-6999)")
    ((7000, 28, 28), dtype('float64'), 7000, True)
    """
    from ..data.labelled import load_labelled

    pics = load_labelled(source, world).split(part)
    keep = np.arange(len(pics))
    if n < len(pics):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
        keep = np.sort(rng.choice(len(pics), size=n, replace=False))
    rows = pics.rows[keep]
    where = f"labelled files {pics.source} ({part} part, rows {rows.min()}-{rows.max()})"
    return pics.images[keep], pics.factors[keep], where, len(keep)
