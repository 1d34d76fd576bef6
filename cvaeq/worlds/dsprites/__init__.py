"""The dSprites world: five factors, 64×64 binary images, a pixel-exact renderer.

The real dataset's latents are (color, shape, scale, orientation, posX, posY)
with sizes (1, 3, 6, 40, 32, 32); cvaeq names the five that vary
(:mod:`.factors`), redraws every image itself (:mod:`.render`, checked against
real frames by :mod:`.reference`) and knows which orientations of a shape draw
the same picture (:mod:`.symmetry`). Its default story is ``default.toml``
beside this file. :data:`WORLD` is the :class:`~cvaeq.world.World` registered
as ``"dsprites"``.

>>> WORLD.names
('shape', 'scale', 'orientation', 'posX', 'posY')
>>> WORLD.n_images, WORLD.image_shape
(737280, (64, 64))
"""

from __future__ import annotations

from pathlib import Path

from ...world import Factor, World
from .factors import FACTORS, SHAPES, VALUES
from .render import render
from .symmetry import orientation_equivalence

__all__ = ["WORLD", "STORY_PATH"]

#: The default story of the dSprites world ("gravity and temperament").
STORY_PATH = Path(__file__).resolve().parent / "default.toml"


def _load_real(path: Path):
    """Images and classes of the real ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (no pickle)."""
    from ...data.files import load_grid

    grid = load_grid(path, world=WORLD)
    return grid.images_at(grid.indices), WORLD.classes_array_of(grid.indices)


WORLD = World(
    name="dsprites",
    factors=tuple(
        Factor("shape", labels=SHAPES, values=VALUES["shape"])
        if f == "shape"
        else Factor(f, values=VALUES[f], unit="radians" if f == "orientation" else "")
        for f in FACTORS
    ),
    image_shape=(64, 64),
    render=render,
    default_story="default",
    # the causal VAE draws a 32x32 window placed by (posY, posX) (cvaeq.model.networks)
    model_arch={"window": 1, "window_factors": ["posY", "posX"], "centroid_correction": 1},
    equivalent={"orientation": ("shape", orientation_equivalence())},
    load_real=_load_real,
    file_constants=(("color", 1.0),),
    description="dSprites: shape, scale, orientation, posX, posY; 64x64 binary sprites (737,280 images)",
)
