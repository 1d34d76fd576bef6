"""The pendulum world: its geometry, renderer and story against the public generator's formulas.

The expected values here are computed the generator's way (light angles
``phi = j pi / 200``, projections along slope ``tan(phi)``), independently of
cvaeq's code, which names the light by its x position.
"""

import math

import numpy as np
import pytest

from cvaeq.errors import StoryError
from cvaeq.story import load_story, story_from_text
from cvaeq.world import get_world
from cvaeq.worlds.pendulum import factors as F
from cvaeq.worlds.pendulum import geometry as G

WORLD = get_world("pendulum")
STORY = load_story("pendulum")
COL = 20 / 64  # canvas units per pixel column
ROW = 22 / 64  # canvas units per pixel row


def generator_shadow(i: int, j: int):
    """(length, centre) of the shadow as the public generator computes it, for angle step i and light step j."""
    theta, phi = i * math.pi / 200, j * math.pi / 200

    def projection(x, y, base=-0.5):
        b = y - x * math.tan(phi)
        return (base - b) / math.tan(phi)

    a = projection(10.0, 10.5)
    b = projection(10 + 9.5 * math.sin(theta), 10.5 - 9.5 * math.cos(theta))
    return max(3.0, abs(a - b)), (a + b) / 2


def column(x):
    return x / COL - 0.5


def row(y):
    return (21 - y) / ROW - 0.5


def image(angle, light, length, position):
    return WORLD.render_checked(np.array([[angle, light, length, position]]))[0]


def test_the_factors_are_the_generators_grids_every_fourth_step():
    assert WORLD.names == ("angle", "light", "shadow_length", "shadow_position")
    assert np.allclose(WORLD.values["angle"], [0.9 * i for i in range(-40, 41, 4)])
    steps = [j for j in range(60, 148, 4) if j != 100]
    lights = sorted(10 + 10 / math.tan(j * math.pi / 200) for j in steps)
    assert np.allclose(WORLD.values["light"], lights)
    assert WORLD.n_images == 21 * 21 * 7 * 9


@pytest.mark.parametrize("i", range(-40, 41, 4))
def test_the_laws_are_the_generators_projection(i):
    for j, light in zip(F.LIGHT_STEPS, F.LIGHTS):
        length, centre = generator_shadow(i, j)
        assert WORLD.laws["shadow_length"].fn(0.9 * i, light) == pytest.approx(length, abs=1e-9)
        assert WORLD.laws["shadow_position"].fn(0.9 * i, light) == pytest.approx(centre, abs=1e-9)


def test_the_shadow_moves_against_the_light_by_the_projections_amount():
    # pendulum hanging straight: centre = 10 - 6.25 (light - 10) / 10, length = max(3, 0.95 |light - 10|)
    for light in F.LIGHTS:
        assert G.shadow_position(0.0, light) == pytest.approx(10 - 0.625 * (light - 10))
        assert G.shadow_length(0.0, light) == pytest.approx(max(3.0, 0.95 * abs(light - 10)))
    # the light further left: the shadow further right, for every angle
    for angle in F.ANGLES:
        centres = [G.shadow_position(angle, light) for light in F.LIGHTS]
        assert np.all(np.diff(centres) < 0)


def shadow_span(img):
    """(left, right) canvas x of the shadow bar, read off the bottom rows."""
    cols = np.flatnonzero(img[round(row(-0.5))])
    return (cols.min() + 0.5) * COL - COL / 2, (cols.max() + 0.5) * COL + COL / 2


def test_in_the_pictures_the_story_moves_the_shadow_as_the_light_moves():
    # the story's most likely shadow for angle 0 and two lights: the rendered bar moves right by the
    # projection's amount (to within a grid step of the shadow's grid) and grows
    angle = 10
    spans = {}
    for light in (10, 1):  # light x 9.37 (near the middle), then 2.73 (far left)
        length = int(STORY.table("shadow_length")[angle, light].argmax())
        position = int(STORY.table("shadow_position")[angle, light].argmax())
        spans[light] = shadow_span(image(angle, light, length, position))
    moved = np.mean(spans[1]) - np.mean(spans[10])
    expected = G.shadow_position(0.0, F.LIGHTS[1]) - G.shadow_position(0.0, F.LIGHTS[10])
    assert expected == pytest.approx(0.625 * (F.LIGHTS[10] - F.LIGHTS[1]))
    assert moved > 0 and abs(moved - expected) <= 2.2 / 2 + 2 * COL
    assert np.diff(spans[1]) > np.diff(spans[10]) + 3


@pytest.mark.parametrize("angle", [0, 5, 10, 15, 20])
@pytest.mark.parametrize("light", [3, 10, 17])
def test_each_object_is_where_the_geometry_puts_it(angle, light):
    img = image(angle, light, 2, 6)  # shadow: length 6.6, centre 15.2
    theta = math.radians(F.ANGLES[angle])
    bx, by = 10 + 8 * math.sin(theta), 10.5 - 8 * math.cos(theta)
    # the ball: on at its centre, off just beyond it (away from the pivot)
    assert img[round(row(by)), round(column(bx))] == 1
    ox, oy = 10 + 10.3 * math.sin(theta), 10.5 - 10.3 * math.cos(theta)
    assert img[round(row(oy)), round(column(ox))] == 0
    # the rod: on halfway down, off a unit to its side
    mx, my = 10 + 4 * math.sin(theta), 10.5 - 4 * math.cos(theta)
    assert img[round(row(my)), round(column(mx))] == 1
    assert img[round(row(my)), round(column(mx + 1.2 / max(math.cos(theta), 0.5)))] == 0
    # the light: its disk's lit columns on the top row span x = light -+ sqrt(9 - 0.5^2 ...), cut by the sides
    top = np.flatnonzero(img[0])
    y0 = 21 - 0.5 * ROW
    half = math.sqrt(9 - (y0 - 20.5) ** 2)
    lx = F.LIGHTS[light]
    assert abs(top.min() - max(0, column(lx - half))) <= 1 and abs(top.max() - min(63, column(lx + half))) <= 1
    # the shadow: the bar from 11.9 to 18.5 on the bottom rows
    left, right = shadow_span(img)
    assert abs(left - 11.9) <= COL and abs(right - 18.5) <= COL
    assert not img[58:61].any()  # y from 0.05 to 0.95: between the lowest ball (bottom at y = 1) and the ground


def test_neighbouring_classes_draw_different_pictures():
    # every angle and every light is visible: a model can tell each class from its neighbours
    base = np.array([10, 10, 2, 6])
    for f in (0, 1):
        classes = np.repeat(base[None], WORLD.sizes[WORLD.names[f]], axis=0)
        classes[:, f] = np.arange(len(classes))
        imgs = WORLD.render_checked(classes).reshape(len(classes), -1)
        assert np.all((imgs[1:] != imgs[:-1]).sum(1) >= 4)


def test_no_two_shadows_draw_the_same_picture_even_cut_off_by_the_sides():
    # the shadow grids are chosen so: every (length, position) pair draws its own bar, so the
    # shadow's factors can be read off every picture of the grid
    rows = np.array([[10, 10, k, p] for k in range(7) for p in range(9)])
    bars = WORLD.render_checked(rows)[:, 60:].reshape(len(rows), -1)
    assert len({b.tobytes() for b in bars}) == len(rows)
    clipped = [(F.SHADOW_POSITIONS[p] - F.SHADOW_LENGTHS[k] / 2 < 0) or (F.SHADOW_POSITIONS[p] + F.SHADOW_LENGTHS[k] / 2 > 20)
               for _, _, k, p in rows]
    assert sum(clipped) > 10  # cut-off shadows are in the grid, and still told apart


def test_the_story_follows_the_projection_with_a_little_noise():
    for name in ("shadow_length", "shadow_position"):
        table = STORY.table(name)
        assert table.shape == (21, 21, WORLD.sizes[name]) and STORY.parents(name) == ("angle", "light")
        assert table.min() > 0  # every picture is possible
        grid = WORLD.values[name]
        for a in range(21):
            for l in range(21):
                law = WORLD.laws[name].fn(F.ANGLES[a], F.LIGHTS[l])
                assert table[a, l].argmax() == np.argmin(np.abs(grid - law))
                assert table[a, l].max() > 0.45
    assert STORY.parents("angle") == () and STORY.parents("light") == ()


def test_a_law_must_exist_and_read_parents_only():
    text = STORY.text
    with pytest.raises(StoryError, match="unknown law 'shadow'.*shadow_length, shadow_position"):
        story_from_text(text.replace('law = "shadow_length"', 'law = "shadow"'))
    with pytest.raises(StoryError, match="law 'shadow_position' reads angle, light; add 'light'"):
        story_from_text(text.replace('parents = ["angle", "light"]\n[factors.shadow_position.normal]',
                                     'parents = ["angle"]\n[factors.shadow_position.normal]'))
    dsprites = load_story("default").text
    with pytest.raises(StoryError, match="world 'dsprites' has laws: none"):
        story_from_text(dsprites.replace("sd = 0.16", 'sd = 0.16\nlaw = "x"'))
