"""A world's rendered grid: build the whole file, or show one image.

:func:`build_grid` renders every image of a world's grid in grid order (the
last factor fastest; dSprites: 737,280 images, posY fastest) chunk by chunk
and streams them into an uncompressed ``.npz`` in the real dSprites file's
layout (see :mod:`cvaeq.data.files`), so peak memory is a few chunks,
not the 3 GB grid. The file appears only when complete (temp file, then
rename). Uncompressed because it is ~5x faster to write than deflate and lets
:func:`~cvaeq.data.files.load_grid` memory-map the images.

:func:`show_image` renders one image picked by its factors and writes a PNG;
it needs no grid file.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "heart.png"
>>> show_image(["shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5"], out).name
'heart.png'
>>> image_of({"shape": 2, "scale": 5, "orientation": 0, "posX": 16, "posY": 16}, world="dsprites").shape
(64, 64)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..limits import checked_output
from ..paths import atomic_path, cache_path, grid_filename
from ..world import World, get_world
from .files import NpzWriter, layout_arrays

__all__ = ["build_grid", "default_workers", "image_of", "show_image", "save_png"]

#: Images rendered per chunk: 8,192 x 4 KiB = 32 MiB of uint8 at a time.
CHUNK = 8192


def build_grid(
    out: str | os.PathLike | None = None,
    *,
    n: int | None = None,
    chunk: int = CHUNK,
    workers: int | None = None,
    progress: bool = True,
    world: World | str | None = None,
) -> Path:
    """Render a world's grid (default dSprites) to ``out`` (default
    ``home()/`` :func:`~cvaeq.paths.grid_filename`, for dSprites
    ``dsprites_rendered_64x64.npz``).

    ``n`` renders only the first ``n`` grid images (for tests; the file then
    holds a subset, which :func:`~cvaeq.data.files.load_grid` also reads).
    ``workers`` processes render chunks in parallel (default
    :func:`default_workers`; 1 renders in this process); the file is the
    same whatever the number. Returns the path written. A progress bar goes
    to stderr.
    """
    from tqdm import tqdm

    world = get_world(world)
    from .renderless import require_renderer

    require_renderer(
        world, "cannot render a grid", f"its labelled files convert with `cvaeq data import --world {world.name}`"
    )
    out = Path(out) if out is not None else cache_path(grid_filename(world.name))
    checked_output(out, "grid")  # before any work (atomic_path checks it again)
    n = world.n_images if n is None else min(int(n), world.n_images)
    from ..limits import MAX_WORKERS, check_count

    workers = default_workers() if workers is None else check_count(workers, "workers", MAX_WORKERS)
    lc, lv = layout_arrays(world.classes_array_of(np.arange(n, dtype=np.int64)), world)
    bar = tqdm(
        total=n, unit="img", unit_scale=True, desc=f"rendering {world.name}", file=sys.stderr, disable=not progress
    )
    ranges = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]

    def chunks() -> Iterator[np.ndarray]:
        for imgs in _render_ranges(world, ranges, workers):
            bar.update(len(imgs))
            yield imgs

    with bar, atomic_path(out) as tmp, open(tmp, "wb") as f, NpzWriter(f) as w:
        w.stream("imgs", (n, *world.image_shape), np.uint8, chunks())
        w.add("latents_classes", lc)
        w.add("latents_values", lv)
        w.add("metadata_json", np.array(_metadata(world, n)))
    return out


def default_workers() -> int:
    """Processes :func:`build_grid` renders with by default: 1.

    On the 2-core development machine, shared with other work, a second
    process made the build slower (the chunks must also be shipped back);
    pass ``workers`` (``--workers``) where idle cores are at hand.
    """
    return 1


def _render_range(world_name: str, bounds: tuple[int, int]) -> np.ndarray:
    world = get_world(world_name)  # by name: a spawned worker finds it through the plugins
    return world.render_checked(world.classes_array_of(np.arange(*bounds, dtype=np.int64)))


def _render_ranges(world: World, ranges: list[tuple[int, int]], workers: int) -> Iterator[np.ndarray]:
    """Rendered chunks in order; with several workers at most ``2 * workers``
    chunks are in flight, so memory stays bounded however slow the disk is."""
    if workers == 1 or len(ranges) <= 1:
        for bounds in ranges:
            yield world.render_checked(world.classes_array_of(np.arange(*bounds, dtype=np.int64)))
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    # spawn: forking a process that runs threads (tqdm's monitor) is unsafe.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: deque = deque()
        todo = iter(ranges)
        for bounds in todo:
            pending.append(pool.submit(_render_range, world.name, bounds))
            if len(pending) >= 2 * workers:
                break
        while pending:
            imgs = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(_render_range, world.name, nxt))
            yield imgs
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _metadata(world: World, n: int) -> str:
    import json

    from .. import __version__

    consts = [name for name, _ in world.file_constants]
    return json.dumps(
        {
            "title": f"{world.name}, rendered by cvaeq",
            "world": world.name,
            "images": n,
            "latents_names": [*consts, *world.names],
            "latents_sizes": [1] * len(consts) + [f.size for f in world.factors],
            "labels": {f.name: list(f.labels) for f in world.factors if f.labels is not None},
            "cvaeq_version": __version__,
        },
        sort_keys=True,
    )


def image_of(factors: Mapping[str, float] | Sequence[str], world: World | str | None = None) -> np.ndarray:
    """The uint8 image (``image_shape``: 0/1, or 8-bit levels) of one set of factor classes
    of ``world`` (default dSprites).

    ``factors`` is a mapping ``{factor: class}`` or ``name=value`` strings as
    on the command line (values snapped to the grid; a bad name or value is a
    :class:`~cvaeq.errors.DataError`).
    """
    world = get_world(world)
    from .renderless import require_renderer

    require_renderer(
        world,
        "cannot draw a picture from factors",
        f"show a real one from its files with `cvaeq data show --world {world.name} --index N`",
    )
    if not isinstance(factors, Mapping):
        factors = world.parse_factors(list(factors))
    return world.render_checked(world.row(factors))[0]


def save_png(image: np.ndarray, out: str | os.PathLike) -> Path:
    """Write a 0/1 image as an 8-bit grayscale PNG (0/255), atomically."""
    from PIL import Image

    out = Path(out)
    pixels = (np.asarray(image) > 0).astype(np.uint8) * 255
    with atomic_path(out, suffix=".png") as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return out


def show_image(
    factors: Mapping[str, float] | Sequence[str], out: str | os.PathLike, world: World | str | None = None
) -> Path:
    """Render the image of ``world`` named by ``factors`` and write it to ``out`` as a PNG.

    Same as ``cvaeq data show shape=heart scale=1 orientation=0 posX=0.5 posY=0.5 --out heart.png``.
    An 8-bit world's picture is written as its levels: a grey PNG (C = 1) or an RGB one (C = 3).
    """
    world = get_world(world)
    if world.pixel == "8bit":
        from ..viz import save_image, unit

        return save_image(unit(image_of(factors, world), "8bit"), out)
    return save_png(image_of(factors, world), out)
