"""The pendulum world: a pendulum, a light and the shadow they cast; 64×64 binary.

The benchmark of causal representation learning whose factors cause each
other inside the picture (CausalVAE, Yang et al. 2021): the shadow's length
and position are functions of the pendulum's angle and the light's position
(:mod:`.geometry`, the public generator's geometry). cvaeq's version has four
factors on grids (:mod:`.factors`), its own renderer (:mod:`.render`), the
projection as two :class:`~cvaeq.world.Law` objects a story can follow, and
the story ``pendulum`` (``pendulum.toml`` beside this file). :data:`WORLD` is
the :class:`~cvaeq.world.World` registered as ``"pendulum"``.

>>> WORLD.names
('angle', 'light', 'shadow_length', 'shadow_position')
>>> WORLD.n_images, WORLD.image_shape, sorted(WORLD.laws)
(27783, (64, 64), ['shadow_length', 'shadow_position'])
"""

from __future__ import annotations

from pathlib import Path

from ...world import Factor, Law, World
from . import geometry
from .factors import VALUES
from .render import SIZE, render

__all__ = ["WORLD", "STORY_PATH", "STORY_NAME"]

#: The pendulum story ("the light casts the pendulum's shadow") and its registered name.
STORY_PATH = Path(__file__).resolve().parent / "pendulum.toml"
STORY_NAME = "pendulum"

WORLD = World(
    name="pendulum",
    factors=(
        Factor("angle", values=VALUES["angle"], unit="degrees"),
        Factor("light", values=VALUES["light"], unit="(the light's x, 0 to 20)"),
        Factor("shadow_length", values=VALUES["shadow_length"]),
        Factor("shadow_position", values=VALUES["shadow_position"], unit="(the shadow's centre x, 0 to 20)"),
    ),
    image_shape=(SIZE, SIZE),
    render=render,
    default_story=STORY_NAME,
    # Four objects in fixed places, none moved by a pair of position factors:
    # the causal VAE's full-image networks (no window_factors).
    model_arch={"window": 0},
    laws={
        "shadow_length": Law(
            ("angle", "light"),
            geometry.shadow_length,
            "the shadow's length: max(3, |projection of the rod's point 9.5 along - of the pivot|)",
        ),
        "shadow_position": Law(
            ("angle", "light"), geometry.shadow_position, "the shadow's centre: the midpoint of those two projections"
        ),
    },
    description="pendulum: angle and light cast the shadow (shadow_length, shadow_position); 64x64 binary, "
    "27,783 images",
)
