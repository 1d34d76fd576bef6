"""The pong world: a ball somewhere above a paddle, 64×64 binary images.

Four factors, in the column order of every classes array:

========  ===========  ==========================================
factor    kind         classes
========  ===========  ==========================================
ball      categorical  ``round``, ``square``
ballX     numeric      column 0 to 7 (left to right)
ballY     numeric      row 0 to 5 (top to bottom)
paddleX   numeric      column 0 to 7 (left to right)
========  ===========  ==========================================

2 × 8 × 6 × 8 = 768 images. The picture is cut into 8 columns of 8 pixels:
the ball (an 8×8 square, or a disk of diameter 8) fills column ``ballX`` in
the band of rows starting at ``4 + 8 * ballY``; the paddle, 16 pixels wide
and 4 high, lies on rows 58 to 61, centred under column ``paddleX`` (cut off
at the picture's edges). Nothing else varies: the renderer below is the
whole truth of every counterfactual.

>>> import numpy as np
>>> img = render(np.array([[1, 2, 0, 2]]))[0]            # a square ball at column 2, row 0
>>> bool(img[4:12, 16:24].all()), int(img[:56].sum())     # the 8x8 ball, and nothing else above the paddle
(True, 64)
>>> bool(img[58:62, 12:28].all()), int(img[56:].sum())    # the paddle under column 2
(True, 64)
"""

from __future__ import annotations

import numpy as np

from cvaeq.world import Factor, World

__all__ = ["WORLD", "render", "BALLS", "STORY_NAME"]

#: The ball's two shapes, in class order.
BALLS = ("round", "square")
#: The name under which the story ``pong.toml`` is registered (the world's default story).
STORY_NAME = "pong"

_H = _W = 64
_CELL = 8  # pixels per column, and per row band of the ball
_TOP = 4  # first row of the ball's band 0
_PADDLE_ROWS = (58, 62)
_PADDLE_HALF = 8  # the paddle spans 16 pixels around its centre
_y, _x = np.ogrid[0:_H, 0:_W]  # pixel rows (H, 1) and columns (1, W)


def render(classes: np.ndarray) -> np.ndarray:
    """uint8 0/1 images ``(N, 64, 64)`` of ``(N, 4)`` classes (ball, ballX, ballY, paddleX)."""
    c = np.asarray(classes, dtype=np.int64)[:, :, None, None]  # (N, 4, 1, 1): broadcasts over pixels
    ball, bx, by, px = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    # the ball: pixel offsets from the centre of its 8x8 cell
    dx = _x + 0.5 - (bx * _CELL + _CELL / 2)
    dy = _y + 0.5 - (_TOP + by * _CELL + _CELL / 2)
    in_cell = (np.abs(dx) < _CELL / 2) & (np.abs(dy) < _CELL / 2)
    in_disk = dx**2 + dy**2 <= (_CELL / 2) ** 2
    drawn_ball = np.where(ball == 1, in_cell, in_disk)
    # the paddle: rows 58-61, 16 pixels centred under column paddleX
    centre = px * _CELL + _CELL / 2
    paddle = (_y >= _PADDLE_ROWS[0]) & (_y < _PADDLE_ROWS[1]) & (np.abs(_x + 0.5 - centre) < _PADDLE_HALF)
    return (drawn_ball | paddle).astype(np.uint8)


WORLD = World(
    name="pong",
    factors=(
        Factor("ball", labels=BALLS),
        Factor("ballX", values=np.arange(8.0)),
        Factor("ballY", values=np.arange(6.0)),
        Factor("paddleX", values=np.arange(8.0)),
    ),
    image_shape=(_H, _W),
    render=render,
    default_story=STORY_NAME,
    # Two objects, so no single window holds the picture: the causal VAE's
    # full-image networks (no window_factors), sized for 768 simple images.
    model_arch={
        "window": 0,
        "patch_channels": 8,
        "merge_channels": 16,
        "hidden": 64,
        "dec_channels": 16,
        "cell_hidden": 32,
        "dec_hidden": 128,
        "dec_layers": 1,
    },
    description="pong: a round or square ball (ballX, ballY) above a paddle (paddleX); 64x64 binary, 768 images",
)
