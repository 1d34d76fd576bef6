"""Small questions are answered while a big one runs (the big lane is another process), a big
question's answer is the one the explorer gives in process, full lanes answer a JSON 503, and a
question's cost is bounded. Real sockets on 127.0.0.1; every wait is bounded."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from cvaeq.serve import live
from cvaeq.serve.app import create_app
from cvaeq.serve.explorer import MAX_SERVE_PICTURES, Explorer
from cvaeq.serve.lanes import LANE_PICTURES, is_big

HEART = {"shape": "heart", "scale": "1", "orientation": "0", "posX": "0.5", "posY": "0.5"}
SMALL = {"query": "P(X | do(posY=0.2), X=img)", "image": {"factors": HEART}, "seed": 1}
#: 1,000 particles, each decoding the evidence's world and two counterfactual ones: 3,000 pictures
BIG = {"query": "P(posY @ do(shape=square), posY @ do(shape=ellipse) | X=img)", "image": {"factors": HEART},
       "samples": 1000, "seed": 2}


@pytest.fixture(scope="module")
def explorer():
    return Explorer()  # the shipped checkpoint, by name: a worker process can load it too


def post(base, body, timeout=300):
    req = urllib.request.Request(base + "/api/query", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_questions_go_to_a_lane_by_their_cost(explorer):
    small = explorer.prepare(SMALL["query"], SMALL["image"])
    big = explorer.prepare(BIG["query"], BIG["image"], BIG["samples"])
    assert small.pictures == 200 and not is_big(small)  # the page's question: 100 particles, 2 worlds decoded
    assert big.pictures == 3000 > LANE_PICTURES and is_big(big)
    # 1,000 particles of the page's question stay in process (2,000 pictures)
    assert not is_big(explorer.prepare(SMALL["query"], SMALL["image"], 1000))
    assert is_big(explorer.prepare("P(shape | do(scale=1))", samples=100_000))
    assert not is_big(explorer.prepare("P(shape | do(scale=1))"))


def test_a_questions_pictures_are_bounded(explorer):
    from cvaeq.errors import QueryError

    worlds = ", ".join(f"shape @ do(posY={explorer.world.label('posY', k)})" for k in range(17))
    with pytest.raises(QueryError, match=f"at most {MAX_SERVE_PICTURES:,}"):
        explorer.prepare(f"P({worlds} | X=img)", {"factors": HEART}, 1000)
    # a question about Z alone is asked without the image node: it decodes no picture, and its
    # 100,000 particles go to the big lane (it used to decode one picture per particle)
    z = explorer.prepare("P(Z)", samples=100_000)
    assert z.pictures == 0 and is_big(z)


def test_small_questions_answer_while_a_big_one_runs(explorer):
    with live.live_server(create_app(explorer)) as base:
        got = {}

        def ask_big():
            got["big"] = post(base, BIG)
            got["big_done"] = time.monotonic()

        big = threading.Thread(target=ask_big)
        big.start()
        time.sleep(0.2)
        small_times, answered_during = [], 0
        for _ in range(200):  # bounded: at most 200 small questions, while the big one runs
            start = time.monotonic()
            status, answer = post(base, SMALL, timeout=60)
            assert status == 200 and answer["rung"] == "counterfactual"
            small_times.append(time.monotonic() - start)
            if not big.is_alive():
                break
            answered_during += 1
        big.join(300)
        status, answer = got["big"]
        assert status == 200 and answer["samples"] == 1000 and answer["rung"] == "counterfactual"
        # small questions did not wait for the big one: several were answered while it ran
        assert answered_during >= 2, (answered_during, small_times)
        assert max(small_times[:answered_during]) < 10, small_times
        # the big lane's answer is the explorer's in this process, to the bit
        in_process = explorer.ask(BIG["query"], BIG["image"], BIG["samples"], BIG["seed"]).to_dict()
        for key, value in in_process.items():
            if key != "images":
                assert answer[key] == value, key


def test_a_full_lane_is_a_json_503_and_the_server_keeps_serving(explorer):
    app = create_app(explorer)
    app.state.lanes.big_waiting = 1
    with live.live_server(app) as base:
        got = {}
        first = threading.Thread(target=lambda: got.setdefault("first", post(base, BIG)))
        first.start()
        status, answer = None, None
        for _ in range(100):  # until the first big question holds the lane (at most ~10 s)
            if app.state.lanes._big:
                break
            time.sleep(0.1)
        status, answer = post(base, dict(BIG, seed=5))
        assert status == 503 and "ask again" in answer["error"] and "\n" not in answer["error"]
        assert post(base, SMALL)[0] == 200
        first.join(300)
        assert got["first"][0] == 200


def test_a_worker_that_dies_is_a_json_503_and_the_next_big_question_is_answered(explorer):
    app = create_app(explorer)
    lanes = app.state.lanes
    with live.live_server(app) as base:
        got = {}
        first = threading.Thread(target=lambda: got.setdefault("first", post(base, BIG)))
        first.start()
        for _ in range(600):  # until a worker process is answering it (at most ~60 s)
            if lanes.answering is not None and lanes.answering.process.is_alive():
                break
            time.sleep(0.1)
        lanes.answering.process.kill()  # as the kernel's out-of-memory killer would
        first.join(300)
        status, answer = got["first"]
        assert status == 503 and "stopped" in answer["error"] and "\n" not in answer["error"]
        assert post(base, SMALL)[0] == 200
        assert post(base, dict(BIG, seed=7))[0] == 200  # a new worker answers the next one
