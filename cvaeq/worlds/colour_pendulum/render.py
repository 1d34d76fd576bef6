"""The colour pendulum renderer: anti-aliased RGB pictures of the light, rod, ball and shadow.

The scene is the binary pendulum's (:mod:`cvaeq.worlds.pendulum.render`,
whose geometry is the public CausalVAE generator's: Yang et al. 2021), drawn
the way that generator's pictures look: a white background, an orange
light (the sun) at the top, a black rod hanging from the pivot, a red
(firebrick) ball at its end and a grey shadow bar on the ground. The objects
are painted back to front (shadow, light, rod, ball), each over what is
already there, with the fraction of the pixel it covers as its opacity:

    colour = colour * (1 - coverage) + object colour * coverage.

Coverage is measured by supersampling: :data:`SUPERSAMPLE` × :data:`SUPERSAMPLE`
points on a regular grid inside each pixel are tested against the object's
shape (the same tests as the binary renderer, which tests the pixel's centre
only) and averaged, so an edge pixel takes one of 17 coverages and the
blends between colours fill the 8-bit range: that is what makes this a world
for 8-bit pixel models rather than a binary one in disguise.

:func:`make_render` builds the renderer for any side that is a multiple of 16
(the causal VAE's networks need that): 64 (the default, ``colour_pendulum``)
or 96 (CausalVAE's own size; :func:`cvaeq.worlds.colour_pendulum.make_world`).
The canvas is the same at every size (``x`` in [0, 20], ``y`` in [-1, 21]),
so a larger side draws the same scene with finer pixels.

>>> import numpy as np
>>> img = render(np.array([[10, 10, 0, 4]]))[0]     # angle 0, light near the middle, shortest shadow
>>> img.shape, img.dtype
((3, 64, 64), dtype('uint8'))
>>> img[:, 2, 2].tolist(), img[:, 30, 32].tolist()   # the white background; the black rod down the middle
([255, 255, 255], [0, 0, 0])
>>> len(np.unique(img.reshape(3, -1).T, axis=0)) > 20   # anti-aliased edges: many colours, not five
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..pendulum.factors import VALUES
from ..pendulum.geometry import BALL_RADIUS, GROUND, LIGHT_RADIUS, LIGHT_Y, PIVOT, ROD, X_RANGE, Y_RANGE, ball_centre
from ..pendulum.render import ROD_HALF_WIDTH, SHADOW_HALF_HEIGHT

__all__ = ["render", "make_render", "SIZE", "SUPERSAMPLE", "COLOURS", "BACKGROUND"]

#: Picture side in pixels of the default world, and supersampling per pixel side.
SIZE = 64
SUPERSAMPLE = 4
#: The background, and each object's colour (RGB, 0..255), in painting order (back to front).
BACKGROUND = (255, 255, 255)
COLOURS = {
    "shadow": (96, 96, 96),
    "light": (255, 165, 0),
    "rod": (0, 0, 0),
    "ball": (178, 34, 34),
}
#: Pictures rendered at once (the supersampled canvas of a chunk is CHUNK x (4 side)^2 floats).
_CHUNK = 32


def make_render(size: int = SIZE, supersample: int = SUPERSAMPLE) -> Callable[[np.ndarray], np.ndarray]:
    """The renderer of ``size`` × ``size`` pictures: ``render(classes (N, 4)) -> uint8 (N, 3, size, size)``."""
    n = size * supersample
    sub_x = (X_RANGE[0] + (np.arange(n) + 0.5) * (X_RANGE[1] - X_RANGE[0]) / n).astype(np.float32)
    sub_y = (Y_RANGE[1] - (np.arange(n) + 0.5) * (Y_RANGE[1] - Y_RANGE[0]) / n).astype(np.float32)
    X = sub_x[None, None, :]
    Y = sub_y[None, :, None]
    colours = {k: np.array(v, dtype=np.float32)[None, :, None, None] / 255 for k, v in COLOURS.items()}
    background = np.array(BACKGROUND, dtype=np.float32)[None, :, None, None] / 255

    def coverage(inside: np.ndarray) -> np.ndarray:
        """``(N, size, size)`` fraction of each pixel's subsamples inside the shape."""
        c = inside.reshape(inside.shape[0], size, supersample, size, supersample).mean(axis=(2, 4), dtype=np.float32)
        return c[:, None]

    def render_chunk(c: np.ndarray) -> np.ndarray:
        col = lambda v: v.astype(np.float32)[:, None, None]  # noqa: E731  (N,) -> (N, 1, 1)
        theta = np.radians(VALUES["angle"][c[:, 0]])
        light = col(VALUES["light"][c[:, 1]])
        length = col(VALUES["shadow_length"][c[:, 2]])
        centre = col(VALUES["shadow_position"][c[:, 3]])
        bx, by = (col(np.asarray(v)) for v in ball_centre(theta, ROD))
        dx, dy = bx - PIVOT[0], by - PIVOT[1]
        t = np.clip(((X - PIVOT[0]) * dx + (Y - PIVOT[1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        shapes = {
            "shadow": (np.abs(Y - GROUND) <= SHADOW_HALF_HEIGHT) & (np.abs(X - centre) <= length / 2),
            "light": (X - light) ** 2 + (Y - LIGHT_Y) ** 2 <= LIGHT_RADIUS**2,
            "rod": (X - PIVOT[0] - t * dx) ** 2 + (Y - PIVOT[1] - t * dy) ** 2 <= ROD_HALF_WIDTH**2,
            "ball": (X - bx) ** 2 + (Y - by) ** 2 <= BALL_RADIUS**2,
        }
        out = np.broadcast_to(background, (len(c), 3, size, size)).copy()
        for name in COLOURS:  # back to front
            a = coverage(shapes[name])
            out += (colours[name] - out) * a
        return np.rint(out * 255).astype(np.uint8)

    def render(classes: np.ndarray) -> np.ndarray:
        classes = np.asarray(classes, dtype=np.int64).reshape(-1, 4)
        out = np.empty((len(classes), 3, size, size), dtype=np.uint8)
        for start in range(0, len(classes), _CHUNK):
            out[start : start + _CHUNK] = render_chunk(classes[start : start + _CHUNK])
        return out

    render.__doc__ = (
        f"uint8 RGB pictures ``(N, 3, {size}, {size})`` of ``(N, 4)`` classes "
        "(angle, light, shadow_length, shadow_position), anti-aliased."
    )
    return render


#: The default renderer: 64 × 64 × 3.
render = make_render(SIZE)
