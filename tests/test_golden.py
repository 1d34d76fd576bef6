"""Answers of the shipped model recorded before worlds and image-model families
existed: the refactor keeps them byte for byte.

``tests/data/golden/answers.json`` was printed by ``cvaeq query ... --json
--seed S --out DIR`` on the commit before the worlds change (a422ba0): each
query's JSON (without the machine-dependent ``model`` path) and the SHA-256 of
every PNG written. The same queries through :func:`cvaeq.query.answer.ask`
must give the same JSON and the same bytes: every PNG byte for byte, every
string and class exactly, and every number to six significant digits (an ESS
is a sum of weights from float32 networks, whose last bits follow the CPU's
BLAS kernels: on an AMD EPYC one differed in its sixth digit, 851.108773
against the recorded 851.105011, while all the images were the same bytes).

Re-recorded once since, on 2026-12-07: the image mechanism's pixel noise is
drawn in float32 (it was float64), so the sampled and mean PNGs of the two
image counterfactuals changed (every other field stayed the same);
tests/mechanisms/test_pixel_precision.py shows the two streams' answers agree
within Monte Carlo error.
"""

import hashlib
import json
from pathlib import Path

import pytest

from cvaeq.loading import shipped_checkpoint
from cvaeq.query.answer import ask

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden" / "answers.json").read_text())


@pytest.mark.skipif(shipped_checkpoint() is None, reason="the shipped checkpoint is not installed")
@pytest.mark.parametrize("query", sorted(GOLDEN))
def test_shipped_model_answers_as_before_the_refactor(query, tmp_path):
    case = GOLDEN[query]
    answer = ask(query, image=case["image"], seed=case["seed"], out=tmp_path / "out")
    got = json.loads(answer.to_json())
    got.pop("model")
    if "images" in got:
        got["images"] = {k: hashlib.sha256(Path(v).read_bytes()).hexdigest() for k, v in got["images"].items()}
    assert got == _approx(case["answer"])


def _approx(want):
    """``want`` with every float compared to 1e-5 relative (strings, ints, hashes exact)."""
    if isinstance(want, dict):
        return {k: _approx(v) for k, v in want.items()}
    if isinstance(want, list):
        return [_approx(v) for v in want]
    if isinstance(want, float):
        return pytest.approx(want, rel=1e-5, abs=1e-9)
    return want
