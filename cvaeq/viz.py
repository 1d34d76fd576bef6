"""PNG pictures of answers: one image, a grid of sampled images, a mean image.

Images are arrays with values in [0, 1]: ``(H, W)`` (or ``(1, H, W)``) come
out as grey PNGs, ``(3, H, W)`` as colour (RGB) ones; 0/1 images come out
black and white, probabilities or levels (a mean image, an 8-bit picture
divided by 255: :func:`unit`) as 8-bit values ``round(255 * p)``. Every file is written atomically
(:func:`cvaeq.paths.atomic_path`): a crash never leaves half a PNG. The bytes
depend only on the pixels, so the same answer gives the same files.

>>> import numpy as np, pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> grid(np.ones((5, 64, 64)), columns=4).shape    # 2 rows of 4, 2-pixel gaps
(130, 262)
>>> save_image(np.full((64, 64), 0.5), d / "mean.png").name
'mean.png'
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import DataError
from .paths import atomic_path

__all__ = ["to_pixels", "unit", "grid", "png_bytes", "save_image", "save_grid", "GAP", "GAP_LEVEL"]

#: Pixels between the images of a grid, and their grey level.
GAP = 2
GAP_LEVEL = 128


def unit(images, pixel: str = "binary") -> np.ndarray:
    """Pictures on the [0, 1] scale these functions take: 8-bit levels
    (``pixel="8bit"``, uint8) divided by 255; anything else as it is.

    >>> unit(np.array([0, 51, 255], np.uint8), "8bit").tolist()
    [0.0, 0.2, 1.0]
    """
    a = np.asarray(images)
    return a / 255.0 if pixel == "8bit" and a.dtype == np.uint8 else a


def to_pixels(image) -> np.ndarray:
    """8-bit values ``round(255 * p)`` of an image with values in [0, 1]: ``(H, W)``
    grey stays ``(H, W)``, ``(1, H, W)`` grey becomes ``(H, W)``, ``(3, H, W)``
    colour becomes ``(H, W, 3)`` (the layout of a PNG's pixels)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, 2)
    elif a.ndim != 2:
        raise DataError(f"an image must be (H, W) or (C, H, W) with C = 1 or 3, got shape {a.shape}")
    if not bool(np.isfinite(a).all()) or a.min(initial=0) < 0 or a.max(initial=0) > 1:
        raise DataError("image values must lie in [0, 1]")
    return np.rint(a * 255).astype(np.uint8)


def grid(images, columns: int = 8, gap: int = GAP) -> np.ndarray:
    """The ``(N, H, W)`` (grey) or ``(N, C, H, W)`` (C = 1 grey, 3 colour) images
    tiled ``columns`` wide, row by row, as 8-bit pixels (``(rows, cols)`` grey,
    ``(rows, cols, 3)`` colour).

    Gaps (and the unused cells of the last row) are mid-grey, so black and
    white images stay distinguishable from the background.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    colour = images.ndim == 4 and images.shape[1] == 3
    if not (images.ndim == 3 or colour) or len(images) == 0:
        raise DataError(f"a grid needs a non-empty (N, H, W) or (N, C, H, W) stack of images, got shape {images.shape}")
    if columns < 1:
        raise DataError(f"a grid needs at least one column, got {columns}")
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    out = np.full(
        (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, *((3,) if colour else ())), GAP_LEVEL, dtype=np.uint8
    )
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = to_pixels(image)
    return out


def _scaled(pixels: np.ndarray, scale: int) -> np.ndarray:
    if scale < 1:
        raise DataError(f"scale must be a positive integer, got {scale}")
    if scale == 1:
        return pixels
    return pixels.repeat(scale, axis=0).repeat(scale, axis=1)  # (H, W) or (H, W, 3): each pixel a square


def png_bytes(pixels, scale: int = 1) -> bytes:
    """The PNG file of 8-bit ``pixels`` (grey ``(H, W)`` or colour ``(H, W, 3)``, from
    :func:`to_pixels` or :func:`grid`), in memory:
    what the web explorer and the notebook display send (the same bytes :func:`save_image` writes).

    >>> png_bytes(to_pixels(np.zeros((64, 64))))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(_scaled(np.asarray(pixels, dtype=np.uint8), scale))).save(buf, format="PNG")
    return buf.getvalue()


def _write(pixels: np.ndarray, out: str | os.PathLike, scale: int) -> Path:
    from PIL import Image

    pixels = _scaled(pixels, scale)
    out = Path(out)
    try:
        with atomic_path(out, suffix=".png") as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
    except OSError as e:
        raise DataError(f"{out}: cannot write the PNG ({e.strerror or e}); choose a writable --out folder") from None
    return out


def save_image(image, out: str | os.PathLike, scale: int = 1) -> Path:
    """Write one image (0/1, probabilities or levels / 255) as a grey or colour PNG; returns its path.

    ``scale`` enlarges it by pixel repetition (4: a 256×256 file).
    """
    return _write(to_pixels(image), out, scale)


def save_grid(images, out: str | os.PathLike, columns: int = 8, scale: int = 1) -> Path:
    """Write ``(N, H, W)`` or ``(N, C, H, W)`` images as one PNG grid (see :func:`grid`); returns its path."""
    return _write(grid(images, columns), out, scale)
