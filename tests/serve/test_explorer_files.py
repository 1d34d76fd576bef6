"""The explorer of a world without a renderer: evidence from its labelled files,
and a sentence, not a picture, where the true counterfactual would be.

The world (the ``files_explorer`` fixture of conftest.py) is a renderer-less
copy of the 8-bit ``swatch`` world of tests/eightbit.py, its nine pictures
written as PNG files with a factors.csv (rows 6-8 held out), answered by its
hand-written model.
"""

import numpy as np
import pytest

from cvaeq.errors import DataError

from ..eightbit import ALL, render

NOTE = "world 'swatch_files' has no renderer: its pictures are real labelled files"


def test_describe_says_there_is_no_truth_and_which_pictures_there_are(files_explorer):
    d = files_explorer.describe()
    assert d["has_renderer"] is False and d["truth_note"].startswith(NOTE)
    assert d["pictures"] == {"rows": [0, 8], "test_rows": [6, 8], "first": 6}
    # the first question's evidence is the first held-out picture's measured factors
    assert d["evidence"] == {"hue": "blue", "size": "2"}


def test_a_counterfactual_of_a_picture_of_the_files_says_why_it_has_no_truth(files_explorer):
    out = files_explorer.ask("P(X | do(hue=red), X=img)", {"row": 7}, samples=20, seed=0)
    assert "truth" not in out.pictures and out.truth_image is None
    np.testing.assert_array_equal(np.rint(out.pictures["evidence"] * 255), render(ALL[7:8])[0])
    d = out.to_dict()
    assert d["truth_note"].startswith(NOTE) and "truth" not in d
    assert d["evidence_factors"] == {"hue": "blue", "size": "4"}
    # a question that is no counterfactual of the picture has no note
    assert "truth_note" not in files_explorer.ask("P(hue | X=img)", {"row": 7}, samples=20, seed=0).to_dict()


@pytest.mark.parametrize(
    "image, message",
    [
        ({"factors": {"hue": "red", "size": "4"}}, "the evidence cannot be drawn from factors: world 'swatch_files'"),
        ({"row": 9}, "no picture with row index 9"),
        ({"row": "1"}, "row must be a whole number"),
        ({"row": True}, "row must be a whole number"),
    ],
)
def test_bad_evidence_is_one_line(files_explorer, image, message):
    with pytest.raises(DataError, match=message):
        files_explorer.ask("P(X | do(hue=red), X=img)", image, samples=20, seed=0)


def test_served_the_note_is_a_json_field_and_bad_evidence_a_400(files_explorer):
    from starlette.testclient import TestClient

    from cvaeq.serve.app import create_app

    with TestClient(create_app(files_explorer), base_url="http://127.0.0.1:8000") as client:
        world = client.get("/api/world").json()
        assert world["truth_note"].startswith(NOTE)
        r = client.post("/api/query", json={"query": "P(X | do(hue=red), X=img)", "image": {"row": 7}, "seed": 0})
        assert r.status_code == 200, r.text
        assert r.json()["truth_note"].startswith(NOTE) and "truth" not in r.json()["images"]
        bad = client.post(
            "/api/query", json={"query": "P(X | do(hue=red), X=img)", "image": {"factors": {"hue": "red"}}}
        )
        assert bad.status_code == 400 and "has no renderer" in bad.json()["error"]
        assert client.get("/api/world").status_code == 200  # it keeps serving
