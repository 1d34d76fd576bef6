"""Render dSprites images from factor classes, matching the real dataset.

The real images were drawn by the LÖVE framework: a filled polygon per sprite,
moved, rotated and scaled, and rasterised without anti-aliasing, so a pixel is
on exactly when its centre lies inside the polygon. This module redraws them
the same way. The geometry was measured on the real frames in
``../shared/reference/dsprites.gif`` (see docs/geometry.md):

* the centre of a sprite is at ``16 + 32 * pos`` pixels (pos in [0, 1]) from the
  top-left corner; posX moves it right (columns), posY down (rows);
* sizes are proportional to ``scale``; at scale 1 the square has half-side
  9.598 px (about ``UNIT = 9.6``), the ellipse (an exact one) semi-axes 12.766
  and 7.2135 px, and the heart is a 150-point polygon on the classic
  parametric heart curve, ``2 UNIT`` wide;
* orientation turns the sprite counter-clockwise on screen; 0 and 2π are the
  same image.

Rasterising is done row by row: for every sprite outline and every image row
the polygon crosses, the crossing points give at most three runs of pixels,
and a run becomes a row of 64 pixels through a lookup table of bit masks. All
1024 positions of one (shape, scale, orientation) share 32 distinct row
offsets, so the expensive polygon work is done once per 32 images.

>>> import numpy as np
>>> img = render(np.array([[0, 5, 0, 0, 0]]))   # square, scale 1, corner
>>> img.shape, img.dtype, int(img.sum())
((1, 64, 64), dtype('uint8'), 400)
"""

from __future__ import annotations

import numpy as np

from ...errors import DataError
from .factors import FACTORS, IMAGE_SIZE, SIZES, VALUES

__all__ = ["render", "outline", "centre_px", "UNIT", "ORIGIN_PX", "SPAN_PX"]

#: Half-side of the square at scale 1, in pixels (0.15 of the image width).
UNIT = 9.6
#: Pixel coordinate of the sprite centre at position 0 (pixel edges are integers).
ORIGIN_PX = 16.0
#: Pixels travelled by the centre from position 0 to position 1.
SPAN_PX = 32.0
#: Most crossings a horizontal line makes with one outline (the heart makes 4).
_MAX_CROSSINGS = 6
#: The heart is a polygon of this many points of its curve (t = 2 pi i / 150):
#: the frames single it out (150 fits all 192 heart frames; 148, 152 or a
#: smooth curve misclassify tens of pixels).
_HEART_VERTICES = 150

# Heart: x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t (y up),
# mapped to pixels (y down) by these factors and shift, fitted on the frames.
_HEART_SX = UNIT / 16.0
_HEART_SY = 0.6623
_HEART_DY = -1.44
# The rotated squares in the frames bound the half-side to (9.5966, 9.5998) px:
# a hair under UNIT (rounding in the original pipeline); take the middle.
_SQUARE_HALF = 9.598
# Ellipse semi-axes fitted on the frames (their product is close to UNIT**2).
_ELLIPSE_A = 12.766
_ELLIPSE_B = 7.2135


def outline(shape: int) -> np.ndarray:
    """``(n, 2)`` polygon (x right, y down, pixels at scale 1) of a shape class.

    >>> outline(0).tolist()
    [[-9.598, -9.598], [9.598, -9.598], [9.598, 9.598], [-9.598, 9.598]]
    """
    if shape == 0:
        return np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]) * _SQUARE_HALF
    if shape == 1:
        # Drawn exactly (row runs solve the quadratic); this polygon is for display.
        t = np.linspace(0.0, 2 * np.pi, 360, endpoint=False)
        return np.stack([_ELLIPSE_A * np.cos(t), _ELLIPSE_B * np.sin(t)], axis=1)
    if shape == 2:
        t = 2 * np.pi * np.arange(_HEART_VERTICES) / _HEART_VERTICES
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return np.stack([x * _HEART_SX, -y * _HEART_SY + _HEART_DY], axis=1)
    raise DataError(f"unknown shape class {shape}; allowed: 0 (square), 1 (ellipse), 2 (heart)")


_OUTLINES = [outline(s) for s in range(SIZES["shape"])]


def centre_px(pos_class: np.ndarray) -> np.ndarray:
    """Pixel coordinate of the sprite centre for posX/posY classes (0..31)."""
    return ORIGIN_PX + SPAN_PX * VALUES["posX"][np.asarray(pos_class)]


def _angle(orientation_class: np.ndarray) -> np.ndarray:
    # Class 39 is 2*pi: fold it onto 0 so both render the identical image.
    k = np.asarray(orientation_class) % (SIZES["orientation"] - 1)
    return VALUES["orientation"][k]


def _row_runs(shape: int, scale: np.ndarray, theta: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Runs ``(U, 64, _MAX_CROSSINGS)`` of sprite x offsets per image row.

    Entry pairs (2j, 2j+1) bound the j-th run of inside points on the row's
    centre line, relative to the sprite centre; unused entries are +inf.
    """
    y = (np.arange(IMAGE_SIZE) + 0.5)[None, :] - cy[:, None]
    out = np.full(y.shape + (_MAX_CROSSINGS,), np.inf)
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    if shape == 1:
        # Exact ellipse: points p with (R^T p)_x^2/a^2 + (R^T p)_y^2/b^2 < 1, where
        # R^T p = (x c - y s, x s + y c) undoes the counter-clockwise turn.
        a2 = (_ELLIPSE_A * scale[:, None]) ** 2
        b2 = (_ELLIPSE_B * scale[:, None]) ** 2
        qa = c * c / a2 + s * s / b2
        qb = 2 * y * c * s * (1 / b2 - 1 / a2)
        qc = y * y * (s * s / a2 + c * c / b2) - 1
        disc = qb * qb - 4 * qa * qc
        ok = disc > 0
        root = np.sqrt(np.where(ok, disc, 0.0))
        out[..., 0] = np.where(ok, (-qb - root) / (2 * qa), np.inf)
        out[..., 1] = np.where(ok, (-qb + root) / (2 * qa), np.inf)
        return out
    verts = _OUTLINES[shape]
    # Counter-clockwise on screen (y down): x' = x cos + y sin, y' = -x sin + y cos.
    vx = scale[:, None] * (verts[:, 0] * c + verts[:, 1] * s)
    vy = scale[:, None] * (-verts[:, 0] * s + verts[:, 1] * c)
    x2, y2 = np.roll(vx, -1, axis=1), np.roll(vy, -1, axis=1)
    crosses = (vy[:, None, :] > y[:, :, None]) != (y2[:, None, :] > y[:, :, None])
    u, r, e = np.nonzero(crosses)
    x = vx[u, e] + (y[u, r] - vy[u, e]) * (x2[u, e] - vx[u, e]) / (y2[u, e] - vy[u, e])
    row = u * IMAGE_SIZE + r
    first = np.searchsorted(row, row)  # rows come sorted from nonzero
    rank = np.arange(len(row)) - first
    out.reshape(-1, _MAX_CROSSINGS)[row, rank] = x
    out.sort(axis=2)
    return out


def _run_table() -> np.ndarray:
    """``(65, 65, 8)`` uint8: packed row with pixels lo..hi on, indexed [lo, hi + 1]."""
    cols = np.arange(IMAGE_SIZE)
    lo = np.arange(IMAGE_SIZE + 1)[:, None, None]
    hi = np.arange(-1, IMAGE_SIZE)[None, :, None]
    return np.packbits((cols >= lo) & (cols <= hi), axis=-1)


_TABLE = _run_table().view(np.uint64)[..., 0]


def render(classes: np.ndarray) -> np.ndarray:
    """``(N, 64, 64)`` uint8 0/1 images of ``(N, 5)`` factor classes (FACTORS order).

    Working memory is about 8 KB per image on top of the 4 KB output (a
    4096-image chunk peaks near 46 MB); render the full grid in chunks.
    """
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[1] != len(FACTORS):
        raise DataError(
            f"render() takes factor classes of shape (N, {len(FACTORS)}) in the order "
            f"{', '.join(FACTORS)}; got shape {classes.shape}"
        )
    classes = classes.astype(np.int64)
    sizes = np.array([SIZES[f] for f in FACTORS])
    if len(classes) and ((classes < 0).any() or (classes >= sizes).any()):
        bad = int(np.argmax(((classes < 0) | (classes >= sizes)).any(axis=1)))
        raise DataError(
            f"factor classes out of range in row {bad}: {classes[bad].tolist()}; allowed: 0..{(sizes - 1).tolist()}"
        )
    n = len(classes)
    rows = np.zeros((n, IMAGE_SIZE), dtype=np.uint64)
    # One outline pass per distinct (shape, scale, orientation, posY) in the chunk.
    key = classes[:, [0, 1, 2, 4]].copy()
    key[:, 2] %= SIZES["orientation"] - 1
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    runs = np.empty((len(uniq), IMAGE_SIZE, _MAX_CROSSINGS))
    for shape in np.unique(uniq[:, 0]):
        sel = uniq[:, 0] == shape
        u = uniq[sel]
        runs[sel] = _row_runs(int(shape), VALUES["scale"][u[:, 1]], _angle(u[:, 2]), centre_px(u[:, 3]))
    cx = centre_px(classes[:, 3])[:, None, None]
    # Pixel c is inside a run (a, b) when a < c + 0.5 - cx < b.
    edges = runs[inverse] + cx - 0.5
    finite = np.isfinite(edges)
    lo = np.where(finite[..., 0::2], np.floor(edges[..., 0::2]) + 1, IMAGE_SIZE)
    hi = np.where(finite[..., 1::2], np.ceil(edges[..., 1::2]) - 1, -1)
    lo = np.clip(lo, 0, IMAGE_SIZE).astype(np.intp)
    hi = np.clip(hi, -1, IMAGE_SIZE - 1).astype(np.intp)
    for j in range(_MAX_CROSSINGS // 2):
        rows |= _TABLE[lo[..., j], hi[..., j] + 1]
    return np.unpackbits(rows.view(np.uint8).reshape(n, IMAGE_SIZE, 8), axis=-1)
