import numpy as np
import pytest

from cvaeq.engine import infer
from cvaeq.evaluation.metrics import total_variation
from cvaeq.evaluation.tv import interventional_exact, tv_queries, tv_scores
from cvaeq.scm import scm_from_story
from cvaeq.story import load_story

STORY = load_story()
TABLES = {f: STORY.table(f) for f in STORY.factors}


def test_query_set_follows_the_graph():
    texts = [q.text for q in tv_queries(STORY)]
    assert "P(posY | do(posX=0))" in texts and "P(scale | do(shape=heart))" in texts
    # orientation has no ancestors and no descendants: only its marginal
    assert [t for t in texts if "orientation" in t.split("|")[0]] == ["P(orientation)"]
    assert not any("do(orientation" in t for t in texts)


def test_exact_interventional_matches_the_story_and_the_engine():
    # P(scale | do(shape=heart)) is the story's row for hearts
    exact = interventional_exact(STORY, TABLES, "scale", {"shape": 2})
    assert [exact[k] for k in range(6)] == pytest.approx(STORY.table("scale")[2])
    # posY under do(posX) marginalises shape and scale: check against the engine's samples
    exact = interventional_exact(STORY, TABLES, "posY", {"posX": 3})
    sampled = infer(scm_from_story(STORY), ["posY"], {"posX": 3}, {}, 40_000, seed=0).distribution("posY")
    assert total_variation(exact, sampled) < 0.03


def test_identical_tables_give_zero_and_perturbed_tables_do_not():
    logits = {f: np.log(t) for f, t in TABLES.items()}
    same = tv_scores(STORY, logits, num_particles=500)
    assert same["interventional"] == pytest.approx(0.0, abs=1e-12) and same["counterfactual"] == 0.0
    rng = np.random.default_rng(0)
    noisy = {f: v + rng.normal(0, 0.5, v.shape) for f, v in logits.items()}
    moved = tv_scores(STORY, noisy, num_particles=500)
    assert moved["interventional"] > 0.02 and moved["counterfactual"] > 0.02
    assert len(moved["queries"]) == 40
