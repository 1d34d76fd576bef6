"""docs/plugins.md walks through this package: its code and story there are the package's own."""

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

import cvaeq_pong

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"
pytestmark = pytest.mark.skipif(not DOC.is_file(), reason="outside the cvaeq repository")


def blocks(lang):
    section = DOC.read_text().split("## Bring your own world", 1)[1]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_the_renderer_shown_is_the_renderer():
    code = next(b for b in blocks("python") if "def render" in b)
    namespace = {"np": np}
    exec(code, namespace)
    classes = cvaeq_pong.WORLD.classes_array_of(np.arange(cvaeq_pong.WORLD.n_images))
    assert (namespace["render"](classes) == cvaeq_pong.render(classes)).all()


def test_the_world_shown_is_the_world():
    factors = next(b for b in blocks("python") if "FACTORS = (" in b)
    world = next(b for b in blocks("python") if "WORLD = World(" in b)
    namespace = {"render": cvaeq_pong.render}
    exec(factors + world, namespace)
    shown, real = namespace["WORLD"], cvaeq_pong.WORLD
    assert shown.names == real.names and shown.image_shape == real.image_shape
    assert all(shown.factor(f).labels == real.factor(f).labels for f in real.names)
    assert all(np.array_equal(shown.values[f], real.values[f]) for f in real.names)
    assert (shown.default_story, dict(shown.model_arch), shown.description) == (
        real.default_story,
        dict(real.model_arch),
        real.description,
    )


def test_the_story_shown_is_the_story():
    shown = tomllib.loads(next(b for b in blocks("toml") if 'world = "pong"' in b))
    assert shown == tomllib.loads(cvaeq_pong.STORY_PATH.read_text())
