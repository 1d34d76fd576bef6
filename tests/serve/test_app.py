"""The explorer's JSON API, through HTTP (Starlette's TestClient): the CLI's JSON and
pictures, the true counterfactual, the decoder view, and every kind of bad
input answered with a 4xx and the CLI's one line while the server keeps serving."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from starlette.testclient import TestClient

from cvaeq.cli import main
from cvaeq.query.answer import read_factors
from cvaeq.serve.app import MAX_BODY_BYTES, create_app
from cvaeq.serve.explorer import Explorer

HEART = {"shape": "heart", "scale": "1", "orientation": "0", "posX": "0.5", "posY": "0.5"}
MOVE = "P(X | do(posY=0.2), X=img)"
#: The explorer answers its own Host names only (TestClient's default, "testserver", is refused).
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def explorer():
    return Explorer()  # the shipped checkpoint


@pytest.fixture(scope="module")
def client(explorer):
    with TestClient(create_app(explorer), base_url=LOCAL) as c:
        yield c


def ask(client, query, image=None, **kw):
    body = {"query": query, **kw}
    if image is not None:
        body["image"] = image
    return client.post("/api/query", json=body)


def picture(client, url):
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("L"))


def cli_error(*args):
    r = CliRunner().invoke(main, ["query", *args])
    assert r.exit_code == 2
    line = r.output.strip()
    assert line.startswith("error: ") and "\n" not in line
    return line[len("error: "):]


def test_the_answer_is_the_clis_json_with_urls_for_files(client, tmp_path):
    r = ask(client, MOVE, {"factors": HEART}, seed=3)
    assert r.status_code == 200
    served = r.json()
    out = tmp_path / "cli"
    spec = ",".join(f"{k}={v}" for k, v in HEART.items())
    cli = CliRunner().invoke(main, ["query", MOVE, "--image", spec, "--seed", "3", "--json", "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.output)
    for key, value in expected.items():
        if key == "model":  # the server names the file, never the folder it is in
            assert served[key] == Path(value).name and "/" not in served[key]
        elif key != "images":
            assert served[key] == value, key
    assert set(served["images"]) == set(expected["images"]) | {"truth"}
    # the same pictures: the served mean image is the CLI's file, enlarged 2x by pixel repetition
    mean = picture(client, served["images"]["mean"])
    cli_mean = np.asarray(Image.open(out / "mean.png"))
    assert np.array_equal(mean[::2, ::2], cli_mean)
    samples = picture(client, served["images"]["samples"])
    assert np.array_equal(samples, np.asarray(Image.open(out / "samples.png")))


def test_the_pictures_change_the_way_the_intervention_says(client, explorer):
    low = ask(client, "P(X | do(posY=0.1), X=img)", {"factors": HEART}).json()
    high = ask(client, "P(X | do(posY=0.9), X=img)", {"factors": HEART}).json()
    world = explorer.world
    for a, want in ((low, 0.1), (high, 0.9)):
        mean = picture(client, a["images"]["mean"])[::2, ::2] / 255.0
        read = read_factors(explorer.loaded.image_model, mean, world)
        assert abs(float(read["posY"]) - want) < 0.05
        assert read["shape"] == "heart"
        # the model's answer agrees with the story's true counterfactual
        assert a["truth"]["iou"] > 0.8
        assert a["interventions"] == {"posY": world.label("posY", world.snap("posY", want))}
        # and the bar charts: every factor's distribution in the answer's worlds
        assert set(a["factors"]) == set(world.names)
        assert a["factors"]["posY"][a["interventions"]["posY"]] == pytest.approx(1.0)
    evidence = picture(client, low["images"]["evidence"])[::2, ::2] > 127
    assert np.array_equal(evidence, explorer.render(explorer.factor_classes(HEART)).astype(bool))


def test_same_question_same_answer_and_the_seed_matters(client):
    a = ask(client, MOVE, {"factors": HEART}, seed=5).json()
    b = ask(client, MOVE, {"factors": HEART}, seed=5).json()
    c = ask(client, MOVE, {"factors": HEART}, seed=6).json()
    assert a == b
    assert a["ess"] != c["ess"]


def test_factor_questions_answer_with_distributions(client):
    r = ask(client, "P(shape | do(scale=1))", samples=2000)
    assert r.status_code == 200
    d = r.json()
    assert d["rung"] == "interventional" and sum(d["distribution"]["shape"].values()) == pytest.approx(1.0)
    assert "images" not in d and "truth" not in d
    e = ask(client, "E[posY | do(scale=1)]").json()
    assert set(e["expectation"]) == {"posY"}


def test_an_uploaded_png_is_the_evidence_and_has_no_truth(client, explorer):
    image = explorer.render(explorer.factor_classes(HEART))
    buf = io.BytesIO()
    Image.fromarray(image * 255).save(buf, format="PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    r = ask(client, MOVE, {"png": "data:image/png;base64," + png})
    assert r.status_code == 200, r.text
    d = r.json()
    assert "truth" not in d and "evidence_factors" not in d
    assert np.array_equal(picture(client, d["images"]["evidence"])[::2, ::2] > 127, image.astype(bool))


@pytest.mark.parametrize("query,args", [
    ("P(X | do(colour=square), X=img)", ["--image", "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"]),
    ("P(shape | do(scale=", []),
    ("P(shape | do(scale=7))", []),
])
def test_a_bad_query_is_a_400_with_the_clis_line_and_the_server_keeps_serving(client, query, args):
    image = {"factors": HEART} if args else None
    r = ask(client, query, image)
    assert r.status_code == 400
    assert r.json() == {"error": cli_error(query, *args)}
    assert ask(client, "P(shape)").status_code == 200


def test_a_bad_png_is_a_400_with_the_clis_message(client, tmp_path):
    small = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(small, format="PNG")
    r = ask(client, MOVE, {"png": base64.b64encode(small.getvalue()).decode()})
    assert r.status_code == 400
    path = tmp_path / "small.png"
    path.write_bytes(small.getvalue())
    assert r.json()["error"] == cli_error(MOVE, "--image", str(path)).replace(str(path), "the uploaded PNG")


@pytest.mark.parametrize("body,status,words", [
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"query": "P(shape)", "file": "/etc/passwd"}).encode(), 400, "unknown field 'file'"),
    (json.dumps({"query": "P(X | X=img)", "image": {"path": "/etc/passwd"}}).encode(), 400, "factors"),
    (json.dumps({"query": "P(X | X=img)", "image": "/etc/passwd"}).encode(), 400, "factors"),
    (json.dumps({"query": "P(X | X=img)", "image": {"png": "not base64!"}}).encode(), 400, "base64"),
    (json.dumps({"query": "P(X | X=img)", "image": {"factors": {"shape": "heart"}}}).encode(), 400, "missing"),
    (json.dumps({"query": "P(X | do(posY=0.2), X=img)", "image": {"factors": HEART}, "samples": 10**6}).encode(),
     400, "samples"),
    (json.dumps({"query": "P(shape)", "seed": -1}).encode(), 400, "seed"),
    (json.dumps({"query": "P(shape)" + " " * 5000}).encode(), 400, "characters"),
    (json.dumps({"query": 7}).encode(), 400, "empty"),
    (b" " * (MAX_BODY_BYTES + 1), 413, "larger than"),
])
def test_bad_requests_are_4xx_with_one_line(client, body, status, words):
    r = client.post("/api/query", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    message = r.json()["error"]
    assert words in message and "\n" not in message and "Traceback" not in message
    assert ask(client, "P(shape)").status_code == 200


def test_deep_json_within_the_size_limit_is_a_400(client):
    r = client.post("/api/query", content=b"[" * 50_000 + b"]" * 50_000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "\n" not in r.json()["error"]


def test_nothing_a_client_sends_names_a_file(client):
    for url in ("/static/../explorer.py", "/static/..%2Fexplorer.py", "/static/%2Fetc%2Fpasswd",
                "/static/explorer.py", "/api/answers/../../etc/passwd.png", "/api/answers/x/passwd.png"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "root:" not in r.text and "import" not in r.text
    assert client.get("/static/explorer.js").headers["content-type"].startswith("text/javascript")


def test_the_decoder_view_draws_what_the_factors_say(client, explorer):
    params = dict(HEART, z="0,0,0,0,0,0")
    decoded = picture(client, "/api/decode.png?" + "&".join(f"{k}={v}" for k, v in params.items()))[::2, ::2] > 127
    truth = explorer.render(explorer.factor_classes(HEART)).astype(bool)
    assert (decoded & truth).sum() / (decoded | truth).sum() > 0.8
    moved = picture(client, "/api/decode.png?" + "&".join(
        f"{k}={v}" for k, v in dict(params, posX="0.1").items()))[::2, ::2] > 127
    assert not np.array_equal(moved, decoded)
    for bad in ("z=1,2", "z=a,b", "z=99,0,0,0,0,0", "shape=blob&z=0,0,0,0,0,0"):
        r = client.get("/api/decode.png?" + "&".join(f"{k}={v}" for k, v in HEART.items() if k not in bad) + "&" + bad)
        assert r.status_code == 400 and "\n" not in r.json()["error"]


def test_the_dag_cuts_the_arrows_into_intervened_nodes(client):
    svg = client.get("/api/dag.svg?do=posY&seen=X").text
    assert 'data-edge="posY-&gt;X"' in svg
    cut = [line for line in svg.split("<g ") if 'data-cut="true"' in line]
    assert cut and all("-&gt;posY" in g for g in cut)
    assert client.get("/api/dag.svg?do=nope").status_code == 400


def test_the_world_description_comes_from_the_story_world(client, explorer):
    d = client.get("/api/world").json()
    world = explorer.world
    assert [f["name"] for f in d["factors"]] == list(world.names)
    assert [len(f["values"]) for f in d["factors"]] == [world.sizes[n] for n in world.names]
    assert d["latent_dim"] == explorer.story.latent_dim and d["has_model"]
    assert ask(client, d["query"], {"factors": d["evidence"]}).status_code == 200


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/explorer.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_story_alone_gets_the_model_shipped_for_it():
    assert Explorer(story="pendulum").has_model and Explorer(story="default").has_model


def test_without_a_model_factor_questions_work_and_image_ones_say_what_to_do():
    from cvaeq.story import load_story, story_from_text

    edited = story_from_text(load_story("default").text.replace("sd = 0.22", "sd = 0.3"))  # no model trained on it
    with TestClient(create_app(story=edited), base_url=LOCAL) as c:
        assert c.post("/api/query", json={"query": "P(shape | do(scale=1))"}).status_code == 200
        r = c.post("/api/query", json={"query": "P(X | do(shape=square), X=img)", "image": {"factors": HEART}})
        assert r.status_code == 400 and "trained model" in r.json()["error"]
        assert c.get("/api/decode.png?z=0").status_code == 400
        d = c.get("/api/world").json()
        assert not d["has_model"] and c.post("/api/query", json={"query": d["query"]}).status_code == 200
