"""The rendered dSprites grid: build the whole file, or show one image.

:func:`build_grid` renders all 737,280 images in grid order (posY fastest)
chunk by chunk and streams them into an uncompressed ``.npz`` in the real
file's layout (see :mod:`cvaeq.data.files`), so peak memory is a few chunks,
not the 3 GB grid. The file appears only when complete (temp file, then
rename). Uncompressed because it is ~5x faster to write than deflate and lets
:func:`~cvaeq.data.files.load_grid` memory-map the images.

:func:`show_image` renders one image picked by its factors and writes a PNG;
it needs no grid file.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "heart.png"
>>> show_image(["shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5"], out).name
'heart.png'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..paths import GRID_FILENAME, atomic_path, home
from .dsprites import FACTORS, IMAGE_SIZE, N_IMAGES, classes_array_of, parse_factors
from .files import NpzWriter, layout_arrays
from .render import render

__all__ = ["build_grid", "render_indices", "image_of", "show_image", "save_png"]

#: Images rendered per chunk: 32,768 x 4 KiB = 128 MiB of uint8 at a time.
CHUNK = 32768


def render_indices(indices: np.ndarray, chunk: int = 4096) -> Iterator[np.ndarray]:
    """Render the images of grid ``indices`` in chunks (uint8 ``(<=chunk, 64, 64)``)."""
    indices = np.asarray(indices, dtype=np.int64)
    for start in range(0, len(indices), chunk):
        yield render(classes_array_of(indices[start : start + chunk]))


def build_grid(
    out: str | os.PathLike | None = None,
    *,
    n: int | None = None,
    chunk: int = CHUNK,
    progress: bool = True,
) -> Path:
    """Render the dSprites grid to ``out`` (default ``home()/dsprites_rendered_64x64.npz``).

    ``n`` renders only the first ``n`` grid images (for tests; the file then
    holds a subset, which :func:`~cvaeq.data.files.load_grid` also reads).
    Returns the path written. A progress bar goes to stderr.
    """
    from tqdm import tqdm

    out = Path(out) if out is not None else home() / GRID_FILENAME
    n = N_IMAGES if n is None else int(n)
    indices = np.arange(n, dtype=np.int64)
    lc, lv = layout_arrays(classes_array_of(indices))
    bar = tqdm(total=n, unit="img", unit_scale=True, desc="rendering dSprites", file=sys.stderr, disable=not progress)

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, n, chunk):
            imgs = render(classes_array_of(indices[start : start + chunk]))
            bar.update(len(imgs))
            yield imgs

    with bar, atomic_path(out) as tmp, open(tmp, "wb") as f, NpzWriter(f) as w:
        w.stream("imgs", (n, IMAGE_SIZE, IMAGE_SIZE), np.uint8, chunks())
        w.add("latents_classes", lc)
        w.add("latents_values", lv)
        w.add("metadata_json", np.array(_metadata(n)))
    return out


def _metadata(n: int) -> str:
    import json

    from .. import __version__

    return json.dumps(
        {
            "title": "dSprites, rendered by cvaeq",
            "images": n,
            "latents_names": ["color", *FACTORS],
            "latents_sizes": [1, 3, 6, 40, 32, 32],
            "shapes": ["square", "ellipse", "heart"],
            "cvaeq_version": __version__,
        },
        sort_keys=True,
    )


def image_of(factors: Mapping[str, int] | Sequence[str]) -> np.ndarray:
    """The ``(64, 64)`` uint8 0/1 image of one set of factor classes.

    ``factors`` is a mapping ``{factor: class}`` or ``name=value`` strings as
    on the command line (values snapped to the grid; a bad name or value is a
    :class:`~cvaeq.errors.DataError`).
    """
    if not isinstance(factors, Mapping):
        factors = parse_factors(list(factors))
    classes = np.array([[int(factors[f]) for f in FACTORS]], dtype=np.int64)
    return render(classes)[0]


def save_png(image: np.ndarray, out: str | os.PathLike) -> Path:
    """Write a 0/1 image as an 8-bit grayscale PNG (0/255), atomically."""
    from PIL import Image

    out = Path(out)
    pixels = (np.asarray(image) > 0).astype(np.uint8) * 255
    with atomic_path(out, suffix=".png") as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return out


def show_image(factors: Mapping[str, int] | Sequence[str], out: str | os.PathLike) -> Path:
    """Render the image named by ``factors`` and write it to ``out`` as a PNG.

    Same as ``cvaeq data show shape=heart scale=1 orientation=0 posX=0.5 posY=0.5 --out heart.png``.
    """
    return save_png(image_of(factors), out)
