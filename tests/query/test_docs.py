"""docs/queries.md shows the messages the code really gives."""

import re
from pathlib import Path

import numpy as np
import pytest

from cvaeq.errors import QueryError
from cvaeq.query import parse, resolve
from cvaeq.story import load_story

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
# Table rows "| `QUERY` | message |" in the Errors section; `\|` is a pipe inside a cell.
ROWS = [
    (m.group(1).replace("\\|", "|"), m.group(2).replace("\\|", "|"))
    for m in re.finditer(r"^\| `([PEQ][^`]*)` \| (.*) \|$", DOC.read_text().split("## Errors", 1)[1], re.M)
]


def test_the_error_tables_are_found():
    assert len(ROWS) >= 20


@pytest.mark.parametrize("text, message", ROWS, ids=[t for t, _ in ROWS])
def test_documented_error_messages_are_the_real_ones(text, message):
    with pytest.raises(QueryError) as info:
        resolve(parse(text), load_story("default"), {"img": np.zeros((64, 64), np.uint8)})
    for part in message.split("..."):
        assert part.strip(" ()") in str(info.value)


# The >>> examples of queries.md run under tests/test_docs_run.py, with every other block of the docs.
