"""One pipeline: a query about one scenario is answered by the multi-scenario code with one
scenario, and its rung (observational / interventional / counterfactual) has one definition
that the JSON, the text answer, ``ask()``, the engine and the explorer all show."""

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvaeq.cli import main
from cvaeq.loading import shipped_checkpoint
from cvaeq.query import parse, resolve
from cvaeq.query.answer import ask
from cvaeq.story import load_story

IMG = "shape=heart,scale=1,orientation=0,posX=0.5,posY=0.5"
RECORDED = json.loads((Path(__file__).parents[1] / "data" / "golden" / "one_scenario.json").read_text())
needs_model = pytest.mark.skipif(shipped_checkpoint() is None, reason="the shipped checkpoint is not installed")

RUNGS = [
    ("P(shape)", None, "observational"),  # the prior: no do, the factual scenario alone (was "interventional")
    ("P(shape | scale=1)", None, "observational"),
    ("P(shape | do(scale=1))", None, "interventional"),
    ("P(scale=1 | do(shape=square))", None, "interventional"),
    ("P(X | do(shape=square), X=img)", IMG, "counterfactual"),
    ("P(scale, scale @ do(shape=square) | shape=heart)", None, "counterfactual"),
    ("PNS(shape=heart, scale=0.5; shape=square, scale=1)", None, "counterfactual"),
    ("P(scale @ do(shape=square) | posX @ do(shape=square) = 0.5)", None, "interventional"),
]


@needs_model
@pytest.mark.parametrize("text, image, rung", RUNGS, ids=[t for t, _, _ in RUNGS])
def test_the_rung_is_the_same_in_json_text_ask_the_engine_and_the_explorer(text, image, rung, tmp_path):
    from cvaeq.serve.explorer import Explorer

    options = ["--samples", "40", "--seed", "2"] + (["--image", IMG, "--out", str(tmp_path)] if image else [])
    cli = CliRunner().invoke(main, ["query", text, "--json", *options])
    assert cli.exit_code == 0, cli.output
    shown = json.loads(cli.stdout)
    table = CliRunner().invoke(main, ["query", text, *options])
    a = ask(text, image=image, samples=40, seed=2, out=tmp_path if image else None)
    explored = Explorer().ask(text, {"factors": dict(kv.split("=") for kv in IMG.split(","))} if image else None,
                              samples=40, seed=2).to_dict()
    assert shown["rung"] == a.rung == a.result.rung == explored["rung"] == rung
    assert table.output.splitlines()[1].startswith(f"rung: {rung}   samples: 40")
    assert resolve(parse(text), load_story("default"), {"img": a.evidence_image}).rung == rung
    assert "kind" not in shown and a.kind == rung  # the former name still reads the rung in Python
    # the explorer's answer is the CLI's (its model is named by file, its pictures by URL)
    same = {k for k in shown if k not in ("model", "images")}
    assert {k: explored[k] for k in same} == {k: shown[k] for k in same}


def _hashes(answer) -> dict[str, str]:
    return {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest() for k, v in answer.result.samples.items()}


@pytest.mark.parametrize("case", RECORDED["cases"], ids=[c["query"] for c in RECORDED["cases"]])
def test_a_one_scenario_query_draws_what_it_drew_before_the_one_pipeline(case):
    """Recorded at c29b8ff, when a query without @ had its own inference (a Pyro replay of the whole
    model): the general path, which reuses the factual particles and recomputes only what a do()
    changes, gives every sampled class and picture byte for byte."""
    if case["story"] is None and shipped_checkpoint() is None:
        pytest.skip("the shipped checkpoint is not installed")
    a = ask(case["query"], image=RECORDED["image"] if case["image"] else None, story=case["story"],
            samples=case["samples"], seed=11)
    assert {k: str(v.dtype) for k, v in a.result.samples.items()} == case["dtypes"]
    assert _hashes(a) == case["sha256"]


def test_a_query_without_at_is_the_query_naming_its_scenario():
    """``P(Y | do(x), e)`` and ``P(Y @ do(x) | e)``: one resolution into the same variables and
    scenario, and the same numbers (only the keys differ)."""
    story = load_story("default")
    plain = resolve(parse("P(scale, posY | do(shape=square), shape=heart)"), story)
    named = resolve(parse("P(scale @ do(shape=square), posY @ do(shape=square) | shape=heart)"), story)
    assert [(v.variable, v.scenario) for v in plain.variables] == [(v.variable, v.scenario) for v in named.variables]
    assert plain.plain and not named.plain and plain.rung == named.rung == "counterfactual"
    a = ask(plain.text, story="default", samples=500, seed=4)
    b = ask(named.text, story="default", samples=500, seed=4)
    assert list(a.distribution.values()) == list(b.distribution.values()) and a.ess == b.ess
