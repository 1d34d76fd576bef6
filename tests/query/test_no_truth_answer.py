"""An answer about a picture of a world without a renderer says plainly that it has no
true counterfactual: in its JSON, its text table and the notebook display."""

import json

import numpy as np
import pytest

from cvaeq.data.labelled import load_labelled
from cvaeq.display import answer_html
from cvaeq.query.answer import ask

from ..eightbit import FILES_STORY, FilesPlugin, SwatchModel, files_world

NOTE = "world 'swatch_files' has no renderer: its pictures are real labelled files"


@pytest.fixture
def files_story(tmp_path):
    from cvaeq.plugins import get_plugin_manager
    from cvaeq.story import story_from_text

    world = files_world(tmp_path)
    plugin = FilesPlugin(world)
    get_plugin_manager().register(plugin, name="swatch-files-world")
    try:
        yield story_from_text(FILES_STORY), load_labelled(None, world)
    finally:
        get_plugin_manager().unregister(plugin)


def test_a_counterfactual_picture_says_it_has_no_truth_everywhere_it_is_shown(files_story):
    story, pics = files_story
    picture = pics.images[pics.row(7)]
    a = ask("P(X | do(hue=red), X=img)", image=picture, model=SwatchModel(), story=story, samples=20, seed=0)
    assert a.truth_note.startswith(NOTE)
    assert json.loads(a.to_json())["truth_note"] == a.truth_note
    assert f"note: {a.truth_note}" in a.to_table().splitlines()
    assert a.truth_note in answer_html(a).replace("&#x27;", "'")
    np.testing.assert_array_equal(a.evidence_image, picture)


def test_questions_that_are_no_counterfactual_picture_have_no_note(files_story):
    story, pics = files_story
    picture = pics.images[pics.row(7)]
    for text in ("P(hue | X=img)", "P(X | X=img)"):
        a = ask(text, image=picture, model=SwatchModel(), story=story, samples=20, seed=0)
        assert a.truth_note is None and "truth_note" not in a.to_dict()


def test_a_world_with_a_renderer_has_no_note():
    a = ask("P(X | do(shape=square), X=img)", image="shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5",
            story="default", samples=10, seed=0)
    assert a.truth_note is None and "truth_note" not in a.to_dict()
