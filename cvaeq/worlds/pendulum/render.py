"""The pendulum renderer: 64×64 binary pictures of the light, rod, ball and shadow.

Each pixel is on when its centre lies inside one of the four objects, in the
canvas coordinates of :mod:`.geometry` (``x`` in [0, 20] across 64 columns,
``y`` in [-1, 21] down 64 rows, so a canvas unit is 3.2 pixels across and
2.9 down):

* the light: a disk of radius 3 centred at (``light``, 20.5), cut by the top edge;
* the rod: points within 0.35 of the segment from the pivot (10, 10.5) to the ball's centre;
* the ball: a disk of radius 1.5 at the end of the rod of length 8;
* the shadow: a bar of height 1 centred on the ground ``y = -0.5``, from
  ``shadow_position - shadow_length / 2`` to ``+ shadow_length / 2``
  (cut by the picture's sides).

The shadow is drawn from its own factors, not from the angle and light:
whether it follows them is the story's business (``pendulum.toml``), which
is how every picture, even an impossible shadow, is a possible world.

Binary, so the built-in Bernoulli image mechanism serves (docs/worlds.md
argues the choice): the objects are solid shapes on an empty ground.

>>> import numpy as np
>>> img = render(np.array([[10, 10, 0, 4]]))[0]     # angle 0, light near the middle, shortest shadow at 10.8
>>> img.shape, bool(img[30:40, 31:33].all())         # the rod hangs straight down the middle
((64, 64), True)
>>> cols = np.flatnonzero(img[62]); int(cols.min()), int(cols.max())   # the shadow: x from 9.3 to 12.3
(30, 38)
"""

from __future__ import annotations

import numpy as np

from .factors import VALUES
from .geometry import BALL_RADIUS, GROUND, LIGHT_RADIUS, LIGHT_Y, PIVOT, ROD, X_RANGE, Y_RANGE, ball_centre

__all__ = ["render", "SIZE", "ROD_HALF_WIDTH", "SHADOW_HALF_HEIGHT", "pixel_x", "pixel_y"]

#: Picture side in pixels; the rod's half-width and the shadow bar's half-height (canvas units).
SIZE = 64
ROD_HALF_WIDTH = 0.35
SHADOW_HALF_HEIGHT = 0.5
#: Canvas coordinates of the pixel centres: columns (x, left to right) and rows (y, top to bottom).
pixel_x = X_RANGE[0] + (np.arange(SIZE) + 0.5) * (X_RANGE[1] - X_RANGE[0]) / SIZE
pixel_y = Y_RANGE[1] - (np.arange(SIZE) + 0.5) * (Y_RANGE[1] - Y_RANGE[0]) / SIZE
_X = pixel_x[None, None, :]
_Y = pixel_y[None, :, None]
_CHUNK = 512


def render(classes: np.ndarray) -> np.ndarray:
    """uint8 0/1 images ``(N, 64, 64)`` of ``(N, 4)`` classes (angle, light, shadow_length, shadow_position)."""
    classes = np.asarray(classes, dtype=np.int64)
    out = np.empty((len(classes), SIZE, SIZE), dtype=np.uint8)
    for start in range(0, len(classes), _CHUNK):
        out[start : start + _CHUNK] = _render(classes[start : start + _CHUNK])
    return out


def _render(c: np.ndarray) -> np.ndarray:
    col = lambda v: v[:, None, None]  # noqa: E731  (N,) -> (N, 1, 1), broadcast over pixels
    theta = np.radians(VALUES["angle"][c[:, 0]])
    light = col(VALUES["light"][c[:, 1]])
    length = col(VALUES["shadow_length"][c[:, 2]])
    centre = col(VALUES["shadow_position"][c[:, 3]])
    bx, by = (col(v) for v in ball_centre(theta, ROD))
    on = (_X - light) ** 2 + (_Y - LIGHT_Y) ** 2 <= LIGHT_RADIUS**2
    on |= (_X - bx) ** 2 + (_Y - by) ** 2 <= BALL_RADIUS**2
    # the rod: distance to the segment pivot -> ball centre
    dx, dy = bx - PIVOT[0], by - PIVOT[1]
    t = np.clip(((_X - PIVOT[0]) * dx + (_Y - PIVOT[1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    on |= (_X - PIVOT[0] - t * dx) ** 2 + (_Y - PIVOT[1] - t * dy) ** 2 <= ROD_HALF_WIDTH**2
    on |= (np.abs(_Y - GROUND) <= SHADOW_HALF_HEIGHT) & (np.abs(_X - centre) <= length / 2)
    return on.astype(np.uint8)
