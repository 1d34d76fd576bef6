"""Resampling: a dataset whose frequencies follow a causal story.

A world's factors are independent over its grid (dSprites: the real data).
:func:`resample` draws ``n`` factor tuples from a story (``Story.sample``
with ``np.random.default_rng(seed)``) and maps each to its grid index in the
story's world; the images are the grid's own renderings, only their
frequencies change. :func:`save_resampled` writes the result in
the grid file layout plus ``indices`` and the story's text.

Images come from a grid file of the world when one is given or cached (the
real dSprites file counts), else the world renders them; each distinct grid index is rendered
or read once. Same story, ``n`` and seed (and image source) give the same
file, byte for byte.

>>> from cvaeq.story import load_story
>>> r = resample(load_story("default"), 1000, seed=0)
>>> r.classes.shape, r.indices.dtype
((1000, 5), dtype('int64'))
>>> bool((r.world.indices_of(r.classes) == r.indices).all())
True
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..limits import checked_output
from ..paths import atomic_path
from ..world import World, get_world
from .files import Grid, NpzWriter, cached_grid, layout_arrays, load_grid

__all__ = ["Resampled", "resample", "save_resampled", "load_resampled", "images_for"]

_CHUNK = 16384


@dataclass(frozen=True, eq=False)
class Resampled:
    """``n`` factor tuples drawn from a story, and the grid image of each.

    ``classes`` ``(n, F)`` int64 in the world's factor order; ``indices``
    ``(n,)`` int64 grid indices (``world.indices_of(classes)``); ``values``
    ``(n, F)`` grid values.
    """

    story_text: str
    story_name: str
    seed: int
    classes: np.ndarray
    indices: np.ndarray
    world: World

    @property
    def n(self) -> int:
        return len(self.classes)

    @property
    def values(self) -> np.ndarray:
        return self.world.values_of(self.classes)


def resample(story, n: int, seed: int) -> Resampled:
    """Draw ``n`` factor tuples from ``story`` (a Story, a name or a path) with ``seed``."""
    from ..story import Story, load_story

    if not isinstance(story, Story):
        story = load_story(story)
    from ..limits import MAX_IMAGES, MAX_SEED, check_count

    check_count(n, "n (images)", MAX_IMAGES, error=DataError)
    check_count(seed, "seed", MAX_SEED, low=0, error=DataError)
    classes = story.sample(int(n), np.random.default_rng(int(seed)))
    return Resampled(story.text, story.name, int(seed), classes, story.world.indices_of(classes), story.world)


def images_for(
    indices: np.ndarray, grid: Grid | None = None, world: World | str | None = None, chunk: int = _CHUNK
) -> Iterator[np.ndarray]:
    """uint8 images of grid ``indices`` of ``world`` in chunks: read from ``grid``, or rendered.

    ``world`` defaults to the grid's (else dSprites). Each chunk's distinct
    indices are rendered (or read) once.
    """
    world = get_world(world if world is not None else (grid.world if grid is not None else None))
    if grid is not None and grid.world.name != world.name:
        raise DataError(f"{grid.path}: a grid file of world {grid.world.name!r}, not {world.name!r}")
    indices = np.asarray(indices, dtype=np.int64)
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        uniq, inverse = np.unique(part, return_inverse=True)
        imgs = grid.images_at(uniq) if grid is not None else world.render_checked(world.classes_array_of(uniq))
        yield imgs[inverse]


def save_resampled(
    resampled: Resampled,
    out: str | os.PathLike,
    grid: Grid | str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Write a resampled dataset as ``.npz``, atomically.

    Members: ``imgs`` (uint8 ``(n, H, W)``), ``latents_classes`` and
    ``latents_values`` (the world's layout, :mod:`cvaeq.data.files`),
    ``indices`` (int64 grid indices) and ``metadata_json`` (world, story name
    and text, seed, n, image source). ``grid`` is a loaded :class:`Grid` or a
    path; ``None`` uses the world's cached grid file if there is one, else
    renders the images.
    """
    import json

    from tqdm import tqdm

    checked_output(out, "resampled .npz")  # before any work (atomic_path checks it again)
    world = resampled.world
    if grid is None:
        grid = cached_grid(world)
    elif not isinstance(grid, Grid):
        grid = load_grid(grid, world)
    source = "rendered" if grid is None else f"grid file {grid.path.name}"
    lc, lv = layout_arrays(resampled.classes, world)
    meta = {
        "kind": f"cvaeq resampled {world.name}",
        "world": world.name,
        "story": resampled.story_name,
        "story_text": resampled.story_text,
        "seed": resampled.seed,
        "n": resampled.n,
        "images": source,
    }
    n = resampled.n
    bar = tqdm(total=n, unit="img", unit_scale=True, desc="resampling", file=sys.stderr, disable=not progress)

    def chunks():
        for imgs in images_for(resampled.indices, grid, world):
            bar.update(len(imgs))
            yield imgs

    out = Path(out)
    with bar, atomic_path(out) as tmp, open(tmp, "wb") as f, NpzWriter(f) as w:
        w.stream("imgs", (n, *world.image_shape), np.uint8, chunks())
        w.add("latents_classes", lc)
        w.add("latents_values", lv)
        w.add("indices", resampled.indices)
        w.add("metadata_json", np.array(json.dumps(meta, sort_keys=True)))
    return out


def load_resampled(path: str | os.PathLike) -> tuple[Grid, np.ndarray]:
    """A resampled file as a :class:`Grid` (rows in sampled order) and its ``indices``."""
    path = Path(path)
    grid = load_grid(path)
    with np.load(path, allow_pickle=False) as z:
        if "indices" not in z.files:
            raise DataError(f"{path}: no 'indices' array; not a file written by `cvaeq data resample`")
        indices = z["indices"]
    if indices.dtype != np.int64 or indices.shape != (len(grid),) or not np.array_equal(indices, grid.indices):
        raise DataError(f"{path}: 'indices' does not match latents_classes; rewrite it with `cvaeq data resample`")
    return grid, indices
