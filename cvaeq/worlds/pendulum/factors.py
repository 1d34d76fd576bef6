"""The pendulum world's four factors and their grids.

========================  =======  ===========================================
factor                    classes  values
========================  =======  ===========================================
``angle``                 21       the pendulum's angle from the vertical, in
                                   degrees: ``0.9 i`` for ``i`` = -40, -36, ..., 40
                                   (-36 to 36; positive swings the ball right)
``light``                 21       the light's ``x`` on the canvas (1.73 to
                                   17.27), for light angles ``phi = j pi / 200``,
                                   ``j`` = 60, 64, ..., 144 except 100 (straight
                                   above, where the projection is undefined)
``shadow_length``         7        3.0, 4.8, ..., 13.8 (canvas units)
``shadow_position``       9        the shadow's centre: 2.0, 4.2, ..., 19.6
========================  =======  ===========================================

Why these grids. The public generator's grid (84 angles × 87 lights) is every
step of ``pi/200``: a step moves the ball by half a pixel and the light by as
little as half a pixel in a 64×64 picture, so neighbouring classes would draw
the same binary image and no model could tell them apart. Every fourth step
(3.6°) moves the ball ≥ 1.6 pixels and the light ≥ 2 pixels. The shadow grids
cover every shadow those angles and lights cast (lengths 3 to 12.6, centres
2.0 to 19.6) in steps of about 6 and 7 pixels, chosen so that no two of
their 63 shadows draw the same picture even where the picture's sides cut a
long shadow off (steps of 1.5 and 1.6 made four such pairs, so no model
could have read the shadow's factors on 5% of the grid). The full grid is
21 × 21 × 7 × 9 = 27,783 images, rendered in a few seconds; shadows that no
angle and light cast are in it too, since the story gives every picture
some probability.

>>> from cvaeq.worlds.pendulum import WORLD
>>> WORLD.sizes
{'angle': 21, 'light': 21, 'shadow_length': 7, 'shadow_position': 9}
>>> WORLD.label("angle", 0), WORLD.label("light", 20), WORLD.n_images
('-36', '17.2654', 27783)
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import light_x

__all__ = ["FACTORS", "ANGLES", "LIGHT_STEPS", "LIGHTS", "SHADOW_LENGTHS", "SHADOW_POSITIONS", "VALUES"]

#: Factor names, in the column order of every classes array.
FACTORS = ("angle", "light", "shadow_length", "shadow_position")
#: Pendulum angles in degrees: every fourth step of pi/200 from -40 to 40 steps.
ANGLES = np.round(np.arange(-40, 41, 4) * 0.9, 10)
#: The light-angle steps j (phi = j pi / 200) of the light grid, and the light's x for each, in increasing x.
LIGHT_STEPS = tuple(sorted((j for j in range(60, 148, 4) if j != 100), key=lambda j: light_x(j * math.pi / 200)))
LIGHTS = np.array([light_x(j * math.pi / 200) for j in LIGHT_STEPS])
#: The shadow's length and centre (canvas units).
SHADOW_LENGTHS = np.round(3.0 + 1.8 * np.arange(7), 10)
SHADOW_POSITIONS = np.round(2.0 + 2.2 * np.arange(9), 10)
#: ``{factor: grid}``.
VALUES = {"angle": ANGLES, "light": LIGHTS, "shadow_length": SHADOW_LENGTHS, "shadow_position": SHADOW_POSITIONS}
