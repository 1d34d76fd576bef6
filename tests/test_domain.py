"""Every numeric factor's domain at its edges: a value counts as on the domain
within half a grid step of the first or last grid value (what the error's
"allowed: 0.5 to 1" and the docs promise), one step past is refused, through
every door a value comes in by: the query language, ``World.snap`` /
``World.parse_value`` (the CLI's ``name=value`` items, the explorer) and the
dSprites module's own ``snap``."""

import re

import numpy as np
import pytest

from cvaeq.errors import DataError, QueryError
from cvaeq.query import parse
from cvaeq.query.resolution import resolve
from cvaeq.story import load_story
from cvaeq.worlds.dsprites import factors as dsprites

STORIES = {name: load_story(name) for name in ("default", "pendulum")}
#: Relative distance from the edge of a value "just inside" or "just outside": far above
#: float rounding of the grid (1e-16) and far below any grid step.
EPS = 1e-6


def _edges():
    for story_name, story in STORIES.items():
        world = story.world
        for f in world.numeric:
            grid = np.asarray(world.factor(f).values, dtype=np.float64)
            half = (grid[1] - grid[0]) / 2
            yield pytest.param(story_name, f, grid, half, id=f"{world.name}-{f}")


def _do(story, factor, value):
    target = next(f for f in story.world.names if f != factor)
    return resolve(parse(f"P({target} | do({factor}={value!r}))"), story).interventions[factor]


@pytest.mark.parametrize("story_name, factor, grid, half", list(_edges()))
def test_half_a_grid_step_past_either_end_is_the_end_and_a_hair_more_is_refused(story_name, factor, grid, half):
    story = STORIES[story_name]
    world = story.world
    last = len(grid) - 1
    inside = {0: float(grid[0] - half * (1 - EPS)), last: float(grid[-1] + half * (1 - EPS))}
    outside = [float(grid[0] - half * (1 + EPS)), float(grid[-1] + half * (1 + EPS)),
               float(grid[0] - 2 * half), float(grid[-1] + 2 * half)]  # a full step past: what a wrong bound lets in
    for cls, value in inside.items():
        assert world.snap(factor, value) == cls
        assert world.parse_value(factor, repr(value)) == cls
        assert _do(story, factor, value) == cls
    for value in outside:
        allowed = re.escape(world.factor(factor).domain)
        with pytest.raises(DataError, match=f"{factor}=.* is off the domain; allowed: {allowed}"):
            world.snap(factor, value)
        with pytest.raises(QueryError, match="is off the domain"):
            _do(story, factor, value)


@pytest.mark.parametrize("factor, ok, refused", [
    ("scale", [1.04, 0.46], [1.06, 1.08, 0.44]),  # step 0.1: allowed 0.45 .. 1.05
    ("posY", [1.016, -0.016], [1.017, 1.03, -0.02]),  # step 1/31: allowed -0.0161 .. 1.0161
    ("posX", [-0.016, 1.016], [-0.017, 1.03]),
])
def test_the_values_a_user_types_near_the_ends(factor, ok, refused):
    """The issue's cases: scale=1.08 and posY=1.03 are refused, the message saying the range."""
    story = STORIES["default"]
    for value in ok:
        assert _do(story, factor, value) in (0, story.world.sizes[factor] - 1)
        assert dsprites.snap(factor, value) in (0, story.world.sizes[factor] - 1)
    for value in refused:
        with pytest.raises(QueryError, match=f"{factor}={value:g} is off the domain; allowed: "):
            _do(story, factor, value)
        with pytest.raises(DataError, match="off the domain"):
            dsprites.snap(factor, value)
        with pytest.raises(DataError, match="off the domain"):
            story.world.snap(factor, value)


@pytest.mark.parametrize("factor", [f for f in dsprites.FACTORS if f != "shape"])
def test_the_dsprites_snap_has_the_same_edges(factor):
    grid = dsprites.VALUES[factor]
    half = (grid[1] - grid[0]) / 2
    assert dsprites.snap(factor, grid[0] - half * (1 - EPS)) == 0
    assert dsprites.snap(factor, grid[-1] + half * (1 - EPS)) == len(grid) - 1
    for value in (grid[0] - half * (1 + EPS), grid[-1] + half * (1 + EPS)):
        with pytest.raises(DataError, match="off the domain"):
            dsprites.snap(factor, value)
