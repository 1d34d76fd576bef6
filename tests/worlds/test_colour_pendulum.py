"""The colour pendulum world: the pendulum's scene in anti-aliased RGB, its truth for 8-bit models."""

import math

import numpy as np
import pytest

from cvaeq.errors import DataError
from cvaeq.story import load_story
from cvaeq.world import get_world
from cvaeq.worlds.colour_pendulum import make_world
from cvaeq.worlds.colour_pendulum.render import BACKGROUND, COLOURS
from cvaeq.worlds.pendulum import factors as F

WORLD = get_world("colour_pendulum")
PENDULUM = get_world("pendulum")
STORY = load_story("colour_pendulum")
COL = 20 / 64  # canvas units per pixel column
ROW = 22 / 64  # canvas units per pixel row


def image(angle, light, length, position, world=WORLD):
    return world.render_checked(np.array([[angle, light, length, position]]))[0]


def colour_mask(img, name, tol=8):
    """Pixels within ``tol`` levels of an object's own colour (its fully covered pixels)."""
    return (np.abs(img.astype(int) - np.array(COLOURS[name])[:, None, None]) <= tol).all(0)


def test_it_is_the_pendulum_in_8bit_rgb():
    assert WORLD.pixel == "8bit" and WORLD.channels == 3 and WORLD.image_shape == (3, 64, 64)
    assert WORLD.names == PENDULUM.names and WORLD.n_images == PENDULUM.n_images == 27783
    for f in WORLD.names:
        assert np.array_equal(WORLD.values[f], PENDULUM.values[f])
    assert sorted(WORLD.laws) == ["shadow_length", "shadow_position"]
    assert WORLD.default_story == "colour_pendulum" and STORY.world is WORLD
    # the same story as the pendulum's: the same graph and the same tables
    pendulum = load_story("pendulum")
    for f in WORLD.names:
        assert STORY.parents(f) == pendulum.parents(f)
        assert np.array_equal(STORY.table(f), pendulum.table(f))
    assert STORY.latent_dim == pendulum.latent_dim


def test_shapes_dtypes_and_determinism():
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, f.size, 40) for f in WORLD.factors], 1)
    a, b = WORLD.render_checked(classes), WORLD.render_checked(classes[::-1].copy())[::-1]
    assert a.shape == (40, 3, 64, 64) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # the same picture whatever the batch it is drawn in
    assert np.array_equal(a, WORLD.render_checked(classes))


def test_edges_are_anti_aliased_so_the_levels_use_the_8bit_range():
    img = image(14, 4, 3, 5)
    for c in range(3):
        assert len(np.unique(img[c])) > 10, "each channel takes many levels, not just the objects' colours"
    # most pixels are the background or an object's own colour; edge pixels are blends between them
    own = np.zeros(img.shape[1:], bool)
    for name in COLOURS:
        own |= colour_mask(img, name, tol=0)
    own |= (img == np.array(BACKGROUND)[:, None, None]).all(0)
    blends = ~own
    assert 20 < blends.sum() < 400
    # the ball's rim on the white background: every pixel there lies between firebrick and white
    theta = math.radians(F.ANGLES[14])
    bx, by = 10 + 8 * math.sin(theta), 10.5 - 8 * math.cos(theta)
    ys, xs = np.mgrid[:64, :64]
    px, py = (xs + 0.5) * COL - bx, 21 - (ys + 0.5) * ROW - by
    r = np.hypot(px, py)
    away = px * math.sin(theta) - py * math.cos(theta) > 0.5  # the half away from the rod
    rim = blends & (r > 1.2) & (r < 1.9) & away
    assert rim.sum() >= 8
    ball = np.array(COLOURS["ball"])[:, None]
    assert ((img[:, rim] >= ball) & (img[:, rim] <= 255)).all()


def test_each_object_is_where_the_pendulums_geometry_puts_it():
    for angle in (0, 6, 14, 20):
        for light in (2, 10, 18):
            img = image(angle, light, 2, 6)  # shadow: length 6.6, centre 15.2
            theta = math.radians(F.ANGLES[angle])
            bx, by = 10 + 8 * math.sin(theta), 10.5 - 8 * math.cos(theta)
            ball = colour_mask(img, "ball")
            rows, cols = np.nonzero(ball)
            assert abs((cols.mean() + 0.5) * COL - bx) < 0.3 and abs(21 - (rows.mean() + 0.5) * ROW - by) < 0.3
            lit = colour_mask(img, "light")
            assert abs((np.nonzero(lit)[1].mean() + 0.5) * COL - np.clip(F.LIGHTS[light], 2.0, 18.0)) < 1.0
            shadow = colour_mask(img, "shadow")
            assert not shadow[:56].any() or shadow[:56].sum() < 4  # grey elsewhere only where the rod's edge blends
            cols = np.nonzero(shadow[58:])[1]
            assert abs((cols.min() * COL) - 11.9) <= COL and abs((cols.max() + 1) * COL - 18.5) <= COL


def test_as_the_story_says_the_shadow_moves_against_the_light():
    # the story's most likely shadow for angle 0: as the light moves right the shadow's grey bar moves left
    angle = 10
    centres = []
    for light in (1, 5, 10, 15, 19):
        length = int(STORY.table("shadow_length")[angle, light].argmax())
        position = int(STORY.table("shadow_position")[angle, light].argmax())
        img = image(angle, light, length, position)
        lit_x = (np.nonzero(colour_mask(img, "light"))[1].mean() + 0.5) * COL
        shadow_x = (np.nonzero(colour_mask(img, "shadow")[58:])[1].mean() + 0.5) * COL
        centres.append((lit_x, shadow_x))
    lit, shade = np.array(centres).T
    assert np.all(np.diff(lit) > 0) and np.all(np.diff(shade) < 0)


def test_the_objects_cover_what_the_binary_pendulum_draws():
    # the binary renderer tests each pixel's centre; the colour one averages 16 points in the pixel:
    # where the pixel is (almost) wholly inside or outside an object they agree
    rng = np.random.default_rng(1)
    classes = np.stack([rng.integers(0, f.size, 20) for f in WORLD.factors], 1)
    colour = WORLD.render_checked(classes)
    binary = PENDULUM.render_checked(classes).astype(bool)
    background = (colour == np.array(BACKGROUND)[None, :, None, None]).all(1)
    assert (background & binary).mean() < 0.002
    # pixels drawn in colour but not in binary are edge pixels the object covers less than half of: few
    assert (~background & ~binary).mean() < 0.03


def test_96_pixels_draws_the_same_scene_finer():
    big = make_world(96)
    assert big.name == "colour_pendulum_96" and big.image_shape == (3, 96, 96) and big.default_story is None
    small, large = image(5, 3, 4, 2), image(5, 3, 4, 2, world=big)
    # the same scene: downsampling the large picture by 1.5 gives nearly the small one
    from PIL import Image

    down = np.asarray(Image.fromarray(large.transpose(1, 2, 0)).resize((64, 64), Image.BOX)).transpose(2, 0, 1)
    assert np.abs(down.astype(int) - small).mean() < 6
    for bad in (50, 0, 512, True, 64.0):
        with pytest.raises(DataError, match="multiple of 16"):
            make_world(bad)
