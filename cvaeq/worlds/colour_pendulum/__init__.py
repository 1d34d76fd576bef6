"""The colour pendulum world: the pendulum drawn in colour, 64×64×3 with 8-bit levels.

The pendulum of :mod:`cvaeq.worlds.pendulum` (the same four factors on the
same grids, the same geometry and the same two laws of the shadow) drawn as
CausalVAE's generator draws it (Yang et al. 2021): an orange light, a black
rod, a red ball and a grey shadow over a white background, with anti-aliased
edges (:mod:`.render`). Its pictures are ``(3, 64, 64)`` uint8 levels 0..255
(``pixel="8bit"``), so the image mechanism is the discretised logistic of
:mod:`cvaeq.levels` and a model of it decodes a location and scale per pixel
and channel. Its story ``colour_pendulum`` (``colour_pendulum.toml``) is the
pendulum story: colour adds no factor, since each object keeps its colour.
:data:`WORLD` is registered as ``"colour_pendulum"``.

**96×96.** CausalVAE's pictures are 96×96. :func:`make_world` builds the same
world at another side that is a multiple of 16, e.g. ``make_world(96)``
(named ``colour_pendulum_96``): the scene and canvas are the same, drawn
with finer pixels; each picture is 27,648 bytes instead of 12,288 (the grid
768 MB instead of 341 MB), rendering and the causal VAE's networks cost
about 2.25 times as much per picture (its trunk and decoder cover 144 cells
of 8×8 pixels instead of 64), and no checkpoint is shipped for it: register
it from a plugin (``register_worlds``) with a story naming it, and train one
(docs/worlds.md, "The colour pendulum").

>>> WORLD.names, WORLD.image_shape, WORLD.pixel, WORLD.channels
(('angle', 'light', 'shadow_length', 'shadow_position'), (3, 64, 64), '8bit', 3)
>>> make_world(96).image_shape
(3, 96, 96)
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ...world import World
from ..pendulum import WORLD as PENDULUM
from .render import SIZE, make_render, render

__all__ = ["WORLD", "STORY_PATH", "STORY_NAME", "make_world"]

#: The colour pendulum story (the pendulum story about this world) and its registered name.
STORY_PATH = Path(__file__).resolve().parent / "colour_pendulum.toml"
STORY_NAME = "colour_pendulum"


def make_world(size: int = SIZE) -> World:
    """The colour pendulum at ``size`` × ``size`` pixels (a multiple of 16, 16 to 256).

    ``size=64`` is :data:`WORLD` (``"colour_pendulum"``); other sizes are
    named ``colour_pendulum_<size>`` and have no default story.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size % 16 or not 16 <= size <= 256:
        raise DataError(f"the colour pendulum's side must be a multiple of 16 from 16 to 256, got {size!r}")
    default = size == SIZE
    return World(
        name="colour_pendulum" if default else f"colour_pendulum_{size}",
        factors=PENDULUM.factors,
        image_shape=(3, size, size),
        pixel="8bit",
        render=render if default else make_render(size),
        default_story=STORY_NAME if default else None,
        # the pendulum's: four objects in fixed places, the full-image networks
        model_arch={"window": 0},
        laws=PENDULUM.laws,
        description=f"colour pendulum: the pendulum drawn in colour, anti-aliased; {size}x{size} RGB, 8-bit, "
        "27,783 images",
    )


WORLD = make_world(SIZE)
