"""Every command and example shown in README.md and docs/*.md runs, and prints what the docs show.

How it works (so that a failure can be fixed quickly):

* Every fenced block of README.md and docs/*.md is found and given a name, ``DOC:LINE (first line)``.
  A block is **run** by the rules below or **listed** in ``NOT_RUN`` with the reason; a block that is
  neither fails ``test_every_block_is_run_or_listed`` (so a new block cannot be forgotten), and so does
  a ``NOT_RUN`` entry that matches no block any more.
* Command blocks (``console``, ``bash``, or plain blocks of ``$ ...`` / ``cvaeq ...`` lines): each
  ``$ cvaeq ...`` command runs in-process (click's runner), in a fresh temporary working folder per
  doc with its own ``CVAEQ_HOME``; the commands of one doc run in the doc's order, so a file one
  writes (``heart.png``, ``pong.safetensors``) is there for the next, as for a reader. Before the
  first, the folder gets the two files the docs take as already made: ``heart.png`` (what
  ``cvaeq data show ... --out heart.png`` writes) and ``model.safetensors`` (what ``cvaeq train``
  writes: the shipped checkpoint, copied). Other commands are listed in ``COMMANDS_NOT_RUN`` by
  pattern with the reason (``pip install``, ``apt-get``, ``torchrun``, ``curl`` to a running server,
  benchmarks); ``a && b`` runs each part so listed parts are skipped and ``cvaeq`` parts run.
* A command with placeholders (``[--world NAME]``, ``QUERY``, ``CKPT``, ``FACTOR=VALUE ...``) is a
  **synopsis**: every option it names must be an option of that command.
* Sizes: long runs are shortened by ``SIZES`` (e.g. ``train --n 500000`` runs with ``--n 300``);
  the shortened command is printed in a failure message. Outputs of a shortened command are compared
  with every number free (and ``#`` bars of any length).
* Output: the lines after a ``$`` command up to the next ``$`` line are what the doc says it prints
  (stdout and stderr as a terminal shows them: a progress bar's last state, or stderr's lines before
  stdout's). ``...`` in them stands for any text (a path's start, elided lines), and a time or a speed
  (a number before ``s``, ``ms``, ``minutes``, ``images/s``, ``s/image``) for any number. Otherwise the
  comparison is exact, line by line (trailing spaces aside), except for the blocks in ``APPROX``,
  whose numbers may differ within the tolerance given there, for the reason given. A command whose
  shown output starts with ``error:`` must exit with code 2, every other with 0.
* ``python`` blocks run in one namespace per doc, in order (``>>>`` blocks as doctests, ELLIPSIS on);
  ``PY_SUBSTITUTIONS`` shortens the few that would run for minutes. ``toml`` blocks must parse, and a
  whole story (``name`` and ``[factors...]``) must load. Query lists (``QUERY_BLOCKS``) must parse.
* Speed: ``test_doc_runs[DOC]`` runs every block of a doc except those in ``SLOW`` (training, scoring)
  in the default run; ``test_doc_runs_whole[DOC]`` (marked ``slow``) runs every block of every doc,
  so each block runs in at least one test. Run it with ``python -m pytest -m slow tests/test_docs_run.py``.
"""

from __future__ import annotations

import contextlib
import difflib
import doctest
import io
import os
import re
import shlex
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))

# ---------------------------------------------------------------------------------------------------
# What is not run, and why. Keys: (doc, the start of the block's first line).
NOT_RUN = {
    # outputs and pictures of text, not commands
    ("docs/evaluation.md", "P(shape)"): "the TV queries cvaeq eval asks, written with placeholders (s', W) and "
                                        "drawn worlds; tests/evaluation/test_tv.py checks the set",
    ("docs/geometry.md", "full grid render"): "output of python benchmarks/render_reference.py (a benchmark)",
    ("docs/plugins.md", "error: plugin 'cvaeq-ordinal'"): "the one line a misbehaving plugin's mechanism gets "
                                                         "(tests/test_plugins.py asserts these lines)",
    ("docs/queries.md", "query      :="): "the grammar, in EBNF (tests/query/test_parser.py, test_syntax.py)",
    ("docs/queries.md", "square  = [0.04"): "two rows of a story table, quoted (the whole story: stories.md)",
    ("docs/queries.md", '{"query": "P(scale, scale @'): "excerpts of --json output with '...' (the queries "
                                                        "are run in queries.md's other blocks and test_worlds.py)",
    ("docs/serve.md", '{"world": "dsprites"'): "an excerpt of GET /api/world with '...' (tests/serve/test_app.py)",
    ("docs/stories.md", "shape ──► scale"): "a drawing of the story's graph",
    ("docs/data.md", "my-pictures/"): "a drawing of a folder of labelled pictures (the example after it makes one)",
    ("docs/stories.md", "value = offset + gain * link("): "the formula of a continuous factor's law (run: tests/mechanisms/test_continuous.py)",
    ("docs/plugins.md", "plugins/cvaeq-pong/"): "a drawing of the plugin's folder",
    ("docs/plugins.md", "warning: plugin 'cvaeq-broken'"): "the form of a warning (tests/test_plugins.py makes one)",
    ("docs/data.md", "from cvaeq.data import load_grid\ngrid = load_grid()"):
        "reads the whole dSprites grid (cvaeq data build: 2.9 GB) and the real file (not shipped); "
        "tests/data/test_files.py loads small grid files",
    ("docs/data.md", "from cvaeq.data import load_grid, resample"):
        "loads the whole dSprites grid (cvaeq data build: 2.9 GB); tests/data/test_files.py loads small ones with make_loader",
    # code shown as signatures or fragments
    ("docs/engine.md", 'noise = pyro.sample("N_"'): "two lines of cvaeq/walk.py (PyroSites) quoted (v, S, mechanism are its locals)",
    ("docs/model.md", "latent_dim: int"): "the ImageModel protocol's signatures (tests/mechanisms/test_image.py)",
    ("docs/models.md", "class SeedMLPFamily:"): "an outline with '...' of plugins/cvaeq-seedmlp/cvaeq_seedmlp/family.py",
    ("docs/models.md", "# cvaeq_seedmlp/__init__.py"): "the plugin's own module, quoted (imports SeedMLPFamily "
                                                       "from it; plugins/cvaeq-seedmlp/tests run it)",
    ("docs/models.md", "@pytest.fixture(scope=\"module\")"): "a fixture, quoted from plugins/cvaeq-seedmlp/tests",
    ("docs/plugins.md", "    def log_prob(self, value, parents):"): "methods of the class of the block before "
                                                                   "(the whole module: plugins/cvaeq-ordinal)",
    ("docs/plugins.md", "register_mechanisms(register: "): "a hook's signature (tests/test_hookspecs_documented.py)",
    ("docs/plugins.md", "register_stories(register: "): "a hook's signature (tests/test_hookspecs_documented.py)",
    ("docs/plugins.md", "register_worlds(register: "): "a hook's signature (tests/test_hookspecs_documented.py)",
    ("docs/plugins.md", "register_image_models(register: "): "a hook's signature (tests/test_hookspecs_documented.py)",
    ("docs/plugins.md", "register_image_mechanisms(register: "): "a hook's signature "
                                                                 "(tests/test_hookspecs_documented.py)",
    ("docs/plugins.md", "from pathlib import Path\nfrom cvaeq import hookimpl\nfrom .world"):
        "the package's __init__.py, a relative import (plugins/cvaeq-pong/tests/test_docs.py compares it)",
}

# Commands not run, by pattern (on the command as shown), with the reason.
COMMANDS_NOT_RUN = [
    (r"^pip install", "installs packages: a test never downloads (the plugins' own tests and "
                      "test_a_plugin_written_from_the_docs_installs_and_is_found installs the pyproject.toml shown)"),
    (r"^torchrun ", "starts several processes; test_every_torchrun_command_ends_its_options_with_a_double_dash "
                    "checks its form, tests/evaluation/test_sharded.py and tests/model/test_distributed.py the runs"),
    (r"^curl ", "needs a running cvaeq serve (tests/serve/test_app.py asks the same API)"),
    (r"^cvaeq serve$", "a server that runs until Ctrl-C (tests/cli/test_serve_cli.py starts it and reads this line)"),
    (r"^python benchmarks/", "a benchmark: minutes of timing, figures of one machine"),
    (r"^python -m pytest", "the test suite itself (pytest's testpaths include plugins/)"),
    (r"^(ruff|mypy)( |$)", "lint, format and type checks: .ci/run runs them after the tests"),
    (r"^cvaeq data build( --workers \d+)?( --out \S+)?( +#.*)?$",
     "renders the whole dSprites grid, 2.9 GB on disk (tests/data/test_grid.py builds it in part, "
     "benchmarks/build_grid.py whole)"),
    (r"--npz dsprites_ndarray_co1sh3sc6or40x32y32_64x64\.npz", "the real dSprites file, not shipped"),
]

# Long runs, shortened: (subcommand, option) -> the value used when the doc's is larger.
SIZES = {
    ("train", "--n"): 300,
    ("train", "--epochs"): 1,
    ("train", "--eval-n"): 50,
    ("eval", "--n"): 3,
    ("eval", "--tv-particles"): 1000,
    ("data resample", "--n"): 1000,
}
# Added to a shortened command when the doc leaves the option at its (large) default.
SIZE_DEFAULTS = {"train": ["--eval-n", "50"], "eval": ["--tv-particles", "1000"]}
# Not shortened: this doc's walkthrough is small enough to run as shown (in the slow test).
RUN_AS_SHOWN = {("docs/plugins.md", "$ cvaeq train --story pong"), ("docs/plugins.md", "$ cvaeq eval --model pong")}

# Python blocks shortened: (doc, block start) -> [(text, replacement)].
PY_SUBSTITUTIONS = {
    ("docs/evaluation.md", "from cvaeq.evaluation import evaluate"): [("n=200", "n=3"), ("samples=100", "samples=20")],
}

# Blocks whose numbers may differ from the doc within a tolerance: (doc, block start) -> (abs, rel, why).
APPROX = {
    ("docs/stories.md", '$ cvaeq query "E[intensity | do(thickness=4), thickness=2, intensity=150]" --model'): (
        2.5, 0.0, "the law is fitted on the 300 rows the shortened train before it sees, not the 1,000 shown: "
                  "the weight's standard error 0.05 moves the counterfactual by 0.5 grey level"),
    ("docs/plugins.md", "$ cvaeq train --story pong"): (
        0.5, 0.02, "training's float sums depend on torch's thread count (issue 26 §3): 257.50 with two "
                   "threads, 257.52 with one"),
    ("docs/plugins.md", "$ cvaeq eval --model pong"): (
        "free", None, "scores of the model trained just before, which depends on the thread count (-ELBO: 26.9 "
                      "and 33.8 in two runs); the timing line too"),
    ("docs/plugins.md", '$ cvaeq query "P(X | do(ballX=6)'): (
        0.5, 0.1, "the ESS of a model trained in the same run (thread count)"),
    ("docs/queries.md", '$ python -c "import numpy as np; np.save(\'noise.npy\''): (
        0.5, 0.05, "the ESS of a picture the model cannot explain rests on a few particles, whose weights "
                   "move with torch's thread count: 17.5 with two threads, 17.7 with one"),
    ("docs/plugins.md", '$ cvaeq query "P(paddleX | do(ballX=6), X=img)"'): (
        0.02, 0.2, "particles of a model trained in the same run (thread count)"),
}

# Blocks that use what a later block of their doc makes ("trained as below"): run right after it.
RUN_AFTER = {("docs/models.md", "$ cvaeq eval --json --n 200"): ("docs/models.md", "$ cvaeq train --family seed_mlp")}

# Blocks skipped by the default run (test_doc_runs); the slow test_doc_runs_whole runs them.
SLOW = {
    ("docs/plugins.md", "$ cvaeq train --story pong"): "trains pong as shown (20 s)",
    ("docs/plugins.md", '$ cvaeq query "P(X | do(ballX=6)'): "needs the pong model trained before",
    ("docs/plugins.md", '$ cvaeq query "P(paddleX | do(ballX=6), X=img)"'): "needs the pong model trained before",
    ("docs/plugins.md", "$ cvaeq eval --model pong"): "scores the pong model as shown (20 s)",
    ("docs/weights.md", "$ cvaeq train --n 500000"): "trains",
    ("docs/weights.md", "$ cvaeq train --story pendulum"): "trains",
    ("docs/weights.md", "$ cvaeq data build --world colour_pendulum"): "renders the colour pendulum's grid "
                                                                        "(3 minutes) and trains",
    ("docs/weights.md", "$ cvaeq eval"): "scores the shipped model",
    ("docs/models.md", "$ cvaeq eval"): "scores two models",
    ("docs/models.md", "$ cvaeq train --family seed_mlp"): "trains the seed's MLP (a 15.8 M-parameter model)",
    ("docs/model.md", "cvaeq train --n 500000"): "trains",
    ("docs/evaluation.md", "from cvaeq.evaluation import evaluate"): "scores a model",
    ("docs/plugins.md", "import pytest\nfrom cvaeq.testing import CHECKS"): "the conformance suite's property tests "
                                                                          "(plugins/cvaeq-ordinal/tests runs them too)",
}

# Plain blocks that are lists of queries: each must parse.
QUERY_BLOCKS = [("docs/queries.md", "P(posY | do(scale=1))"), ("docs/queries.md", "P(X | do(shape=square, scale=0.5"),
                ("docs/queries.md", "scale @ do(shape=square)")]

# Plugins of this repository a doc takes as installed from its start (others: when it runs `pip install -e`).
INSTALLED = {"docs/plugins.md": ["cvaeq-ordinal"], "docs/models.md": ["cvaeq-seedmlp"]}
PLUGIN_OF_WORLD = {"pong": "cvaeq-pong"}
# Files the docs name as the reader's own: my_story.toml is the story stories.md shows; bad.toml is it
# with the heart row summing to 0.9, as stories.md says.
MY_STORY = ("docs/stories.md", 'name = "mine"')
BAD_STORY = ("heart   = [0.35, 0.27, 0.18, 0.10, 0.06, 0.04]", "heart   = [0.25, 0.27, 0.18, 0.10, 0.06, 0.04]")
# badlaw.toml is the morphomnist story stories.md shows with its gamma noise's parameters left out.
MORPHO_STORY = ("docs/stories.md", 'name = "morphomnist"')
BAD_LAW = ('noise = { kind = "gamma", shape = 10, rate = 5 }', 'noise = "gamma"')
# learned.toml is the story with a learned law stories.md shows.
LEARNED_STORY = ("docs/stories.md", 'name = "morpho_learned"')

PLACEHOLDER = re.compile(r"(?<![\w\-])(?:[A-Z][A-Z_]+|\.\.\.)(?![\w(])|\[--|=[A-Z]{2,}\b|\|[A-Z]{2,}")


# ---------------------------------------------------------------------------------------------------
@dataclass
class Block:
    doc: str
    line: int
    lang: str
    text: str

    @property
    def name(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"{self.doc}:{self.line} ({first[:70]})"

    def matches(self, key) -> bool:
        return self.doc == key[0] and self.text.lstrip("\n").startswith(key[1])


def read_blocks(doc: str) -> list[Block]:
    lines = (ROOT / doc).read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, j = len(m.group(1)), i + 1
        while not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        body = "\n".join(line[indent:] for line in lines[i + 1 : j]) + "\n"
        found.append(Block(doc, i + 1, m.group(2), body))
        i = j + 1
    return found


ALL_BLOCKS = [b for doc in DOCS for b in read_blocks(doc)]


def lookup(table, block):
    for key, value in table.items() if isinstance(table, dict) else ((k, True) for k in table):
        if block.matches(key):
            return key, value
    return None, None


def is_command_block(block: Block) -> bool:
    text = block.text.lstrip()
    if block.lang in ("console", "bash"):
        return True  # commands, or the output of the doc's command before
    return block.lang == "" and (text.startswith("$ ") or re.match(r"(cvaeq|python|torchrun|pip) ", text) is not None)


def kind(block: Block) -> str:
    if lookup(NOT_RUN, block)[0]:
        return "listed"
    if is_command_block(block):
        return "commands"
    if block.lang == "python":
        return "python"
    if block.lang == "toml":
        return "toml"
    if lookup(QUERY_BLOCKS, block)[0]:
        return "queries"
    return "unknown"


def commands_of(block: Block) -> list[tuple[str, list[str]]]:
    """[(command, shown output lines)]; a block without '$' is commands only (continuations joined)."""
    lines = block.text.rstrip("\n").splitlines()
    out: list[tuple[str, list[str]]] = []
    if not any(line.startswith("$ ") for line in lines):
        if not re.match(r"(cvaeq|python|torchrun|pip) ", lines[0]):  # what the command before prints
            return [("", lines)]
        for line in lines:
            if line.startswith(" ") and out:  # a synopsis continued on the next line
                out[-1] = (out[-1][0] + " " + line.strip(), [])
            else:
                out.append((line.strip(), []))
        return out
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            cmd = lines[i][2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
            if cmd.count("'") % 2 and i + 1 < len(lines):  # a quoted argument over two lines (curl -d '...')
                while i + 1 < len(lines) and cmd.count("'") % 2:
                    i += 1
                    cmd += " " + lines[i].strip()
            out.append((cmd, []))
        elif out and not out[-1][1] and re.match(r"\s+\[", lines[i]):  # a synopsis continued
            out[-1] = (out[-1][0] + " " + lines[i].strip(), [])
        elif out:
            out[-1][1].append(lines[i])
        i += 1
    return [(c, shown) for c, shown in out]


def strip_comment(cmd: str) -> str:
    """The command without its trailing '  # comment' (a '#' outside quotes, after a space)."""
    quote = None
    for k, ch in enumerate(cmd):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and k > 0 and cmd[k - 1] == " ":
            return cmd[:k].rstrip()
    return cmd.rstrip()


def not_run_reason(cmd: str) -> str | None:
    for pattern, reason in COMMANDS_NOT_RUN:
        if re.search(pattern, cmd):
            return reason
    return None


# ---------------------------------------------------------------------------------------------------
NUMBER = r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:e[-+]?\d+)?"
# A time or a speed (what a machine's load decides) is free in every comparison: "52.0 s", "3035 images/s".
TIMING = rf"{NUMBER}(?= ?(?:images/s|img/s|s/image|ms\b|s\b|minutes\b))"
TOKENS = re.compile(rf"(?P<dots>\.\.\.)|(?P<timing>{TIMING})|(?P<num>{NUMBER})|(?P<bar>#+)|(?P<ch>.)", re.S)


def pattern_of(shown: str, numbers: str) -> re.Pattern:
    """A regex for the shown text: '...' any text; times and speeds free; other numbers exact, captured
    ('approx') or free ('free'); '#' bars exact, or of any length when numbers are not exact."""
    parts = []
    for m in TOKENS.finditer(shown):
        if m["dots"]:
            parts.append(r".*?")
        elif m["timing"]:
            parts.append(f"(?:{NUMBER})")
        elif m["num"]:
            parts.append(f"({NUMBER})" if numbers != "exact" else re.escape(m["num"]))
        elif m["bar"]:
            parts.append("#*" if numbers != "exact" else re.escape(m["bar"]))
        else:
            parts.append(re.escape(m["ch"]))
    return re.compile("".join(parts), re.S)


def normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def compare(shown: str, got: str, numbers: str = "exact", tol=(0.0, 0.0)) -> str | None:
    """None when `got` is what `shown` says; else why not."""
    shown, got = normalise(shown), normalise(got)
    m = pattern_of(shown, numbers).fullmatch(got)
    if m is None:
        diff = "\n".join(difflib.unified_diff(shown.splitlines(), got.splitlines(), "the doc shows", "it printed",
                                              lineterm="", n=1))
        return (f"the text differs{' (numbers free)' if numbers == 'free' else ''}:\n{diff}\n"
                f"--- what it printed, whole (to paste into the doc if the change is right):\n{got}")
    if numbers == "approx":
        wanted = [t["num"] for t in TOKENS.finditer(shown) if t["num"]]
        for a, b in zip(wanted, m.groups()):
            x, y = float(a.replace(",", "")), float(b.replace(",", ""))
            if abs(x - y) > max(tol[0], tol[1] * abs(x)):
                return f"a number differs beyond the tolerance ({tol}): the doc shows {a}, it printed {b}"
    return None


def test_compare_catches_what_it_should():
    assert compare("a 1.5\nb ...\n", "a 1.5\nb /x/y\n") is None
    assert compare("a 1.5\n", "a 1.6\n") is not None
    assert compare("a 1.5 ###\n", "a 1.6 #\n", "free") is None
    assert compare("a 1.5\n", "b 1.5\n", "free") is not None
    assert compare("x 257.50\n", "x 257.52\n", "approx", (0.5, 0.0)) is None
    assert compare("x 257.50\n", "x 259.52\n", "approx", (0.5, 0.0)) is not None
    assert compare("kind: observational\n", "kind: interventional\n", "free") is not None
    assert compare("took 52.0 s, 3035 images/s, 17 queries\n", "took 45.2 s, 1739 images/s, 17 queries\n") is None
    assert compare("took 52.0 s, 17 queries\n", "took 45.2 s, 18 queries\n") is not None
    assert compare("a 1.0, 9 images/s, b 2.0\n", "a 1.1, 1 images/s, b 2.0\n", "approx", (0.2, 0)) is None
    assert compare("a 1.0, 9 images/s, b 2.0\n", "a 1.0, 1 images/s, b 2.5\n", "approx", (0.2, 0)) is not None


# ---------------------------------------------------------------------------------------------------
def subcommand(args: list[str]) -> tuple[click.Command, str, list[str]]:
    from cvaeq.cli import main

    cmd, names, rest = main, [], list(args)
    while isinstance(cmd, click.Group) and rest and rest[0] in cmd.commands:
        names.append(rest[0])
        cmd = cmd.commands[rest.pop(0)]
    return cmd, " ".join(names), rest


def shorten(args: list[str]) -> tuple[list[str], bool]:
    _, name, _ = subcommand(args)
    out, changed = list(args), False
    for (sub, opt), value in SIZES.items():
        if sub != name or opt not in out:
            continue
        k = out.index(opt) + 1
        if float(out[k]) > value:
            out[k], changed = str(value), True
    if changed:
        for opt_value in [SIZE_DEFAULTS.get(name, [])]:
            if opt_value and opt_value[0] not in out:
                out += opt_value
    return out, changed


def check_synopsis(cmd: str) -> str | None:
    words = re.sub(r"[\[\]|]", " ", cmd).split()[1:]
    command, name, _ = subcommand(words)
    known = {o for p in command.params for o in p.opts}
    unknown = [w for w in words if w.startswith("--") and w not in known and w != "--help"]
    if unknown:
        return f"the synopsis names {unknown}, which `cvaeq {name}` does not take (it takes {sorted(known)})"
    return None


class DocRun:
    """Runs one doc's blocks in order in the current folder, collecting what differs."""

    def __init__(self, doc: str, tmp: Path, whole: bool):
        self.doc, self.tmp, self.whole = doc, tmp, whole
        self.namespace: dict = {"__name__": "docs"}
        self.failures: list[str] = []
        self.ran = 0
        self.last = None  # (where, output, shortened) of the last command run
        self.installed: list = []
        for name in INSTALLED.get(doc, []):
            self.install(name)

    def install(self, name: str) -> None:
        import importlib

        from cvaeq.plugins import get_plugin_manager

        try:
            module = importlib.import_module(name.replace("-", "_"))
        except ImportError:  # not installed: the package beside cvaeq in this checkout, as its own tests do
            import sys

            sys.path.insert(0, str(ROOT / "plugins" / name))
            module = importlib.import_module(name.replace("-", "_"))
        pm = get_plugin_manager()
        if not pm.is_registered(module):
            pm.register(module, name=name)
            self.installed.append(module)

    def uninstall(self) -> None:
        from cvaeq.plugins import get_plugin_manager

        for module in self.installed:
            get_plugin_manager().unregister(module)
        self.installed = []

    def fail(self, block: Block, what: str) -> None:
        self.failures.append(f"{block.name}: {what}")

    def run(self) -> None:
        blocks = read_blocks(self.doc)
        for block in [b for b in blocks if lookup(RUN_AFTER, b)[0]]:  # moved after the block they need
            anchor = next(b for b in blocks if b.matches(lookup(RUN_AFTER, block)[1]))
            blocks.remove(block)
            blocks.insert(blocks.index(anchor) + 1, block)
        for block in blocks:
            if not self.whole and lookup(SLOW, block)[0]:
                continue
            k = kind(block)
            if k in ("listed",):
                continue
            getattr(self, f"run_{k}")(block)

    def run_unknown(self, block: Block) -> None:
        self.fail(block, "a block neither run nor listed in NOT_RUN")

    # commands -----------------------------------------------------------------------------------
    def run_commands(self, block: Block) -> None:
        for shown_cmd, shown in commands_of(block):
            if not shown_cmd:  # the output of the last command run
                if self.last is None:
                    self.fail(block, "an output shown with no command before it")
                else:
                    self.check_output(block, *self.last, "\n".join(shown))  # (where, outputs, shortened)
                continue
            if m := re.match(r"pip install -e plugins/(cvaeq-\w+)$", strip_comment(shown_cmd)):
                self.install(m.group(1))  # the in-repo plugin, registered as installing it would
                continue
            parts = [p.strip() for p in strip_comment(shown_cmd).split("&&")]
            for part in parts:
                if not_run_reason(part):
                    continue
                self.run_command(block, part, "\n".join(shown) if part == parts[-1] else "")

    def run_command(self, block: Block, cmd: str, shown: str) -> None:
        if cmd.startswith("python -c "):
            code = shlex.split(cmd)[2]
            try:
                exec(compile(code, f"{block.name} python -c", "exec"), {"__name__": "__main__"})
                self.ran += 1
            except Exception as e:  # noqa: BLE001 -- reported with the block
                self.fail(block, f"`{cmd}` raised {type(e).__name__}: {e}")
            return
        if not cmd.startswith("cvaeq"):
            self.fail(block, f"`{cmd}`: not a cvaeq command and not listed in COMMANDS_NOT_RUN")
            return
        if PLACEHOLDER.search(re.sub(r'"[^"]*"|\'[^\']*\'', '""', cmd)):
            why = check_synopsis(cmd)
            if why:
                self.fail(block, why)
            self.ran += 1
            if not shown.strip():
                return
            # a synopsis shown with an output: the output is the bare command's
            cmd = re.sub(r"\s*\[[^\]]*\]", "", cmd)
            if not_run_reason(cmd):
                return
            if PLACEHOLDER.search(re.sub(r'"[^"]*"|\'[^\']*\'', '""', cmd)):
                self.fail(block, f"`{cmd}`: a synopsis shown with an output, whose bare form still has placeholders")
                return
        from cvaeq.cli import main

        args = shlex.split(cmd)[1:]
        ran_args, shortened = (args, False) if lookup(RUN_AS_SHOWN, block)[0] else shorten(args)
        result = CliRunner().invoke(main, ran_args, prog_name="cvaeq")
        self.ran += 1
        # what a terminal shows; click's runner may put a command's stderr lines (training's epochs) after its
        # stdout ones, so the two streams one after the other count as well
        got = terminal(result.output)
        got_apart = terminal(result.stderr).rstrip("\n") + "\n" + terminal(result.stdout)
        ran = "cvaeq " + shlex.join(ran_args)
        where = f"`{cmd}`" + (f" (ran shortened: `{ran}`)" if shortened else "")
        want_code = 2 if shown.lstrip().startswith("error:") else 0
        if result.exit_code != want_code:
            tb = ""
            if result.exc_info and result.exit_code == 1:
                import traceback

                tb = "".join(traceback.format_exception(*result.exc_info))[-3000:]
            self.fail(block, f"{where} exited {result.exit_code}, not {want_code}:\n{got[-3000:]}{tb}")
            return
        self.last = (where, [got, got_apart], shortened)
        if shown.strip():
            self.check_output(block, where, [got, got_apart], shortened, shown)

    def check_output(self, block: Block, where: str, gots: list[str], shortened: bool, shown: str) -> None:
        _, approx = lookup(APPROX, block)
        whys = []
        for got in gots:  # the terminal's order, then stderr before stdout
            if shortened or (approx and approx[0] == "free"):
                why = compare(shown, got, "free")
            elif approx:
                why = compare(shown, got, "approx", approx[:2])
            else:
                why = compare(shown, got)
            if why is None:
                return
            whys.append(why)
        self.fail(block, f"{where}: {whys[0]}")

    # python ---------------------------------------------------------------------------------------
    def run_python(self, block: Block) -> None:
        text = block.text
        for old, new in lookup(PY_SUBSTITUTIONS, block)[1] or []:
            assert old in text, f"{block.name}: PY_SUBSTITUTIONS' {old!r} is not in the block any more"
            text = text.replace(old, new)
        self.ran += 1
        if re.search(r"^def test_", text, re.M):
            self.run_pytest(block, text)  # and defined below, for the blocks after it
        if text.lstrip().startswith(">>>"):
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            out = io.StringIO()
            test = doctest.DocTestParser().get_doctest(text, self.namespace, block.name, self.doc, block.line)
            runner.run(test, out=out.write)
            if runner.summarize(verbose=False).failed:
                self.fail(block, "the doctest fails:\n" + out.getvalue()[-3000:])
            return
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(text, block.name, "exec"), self.namespace)
        except Exception as e:  # noqa: BLE001 -- reported with the block
            self.fail(block, f"raised {type(e).__name__}: {e}")

    def run_pytest(self, block: Block, text: str) -> None:
        """A test shown in a doc: run by pytest in a new process, as a reader would run it, once with the
        installed plugins loaded (CVAEQ_LOAD_PLUGINS unset) and once without (=0); earlier python blocks of
        the doc it builds on (imports, fixtures) come first."""
        import subprocess
        import sys

        before = [b.text for b in read_blocks(self.doc) if b.lang == "python" and b.line < block.line
                  and kind(b) == "python" and b.line > self.test_context_start(block)]
        # a folder of its own: the doc's folder holds cvaeq/weights/ (export_checkpoint's target), which
        # on sys.path would be a namespace package hiding the installed cvaeq
        here = self.tmp / f"shown-test-{block.line}"
        here.mkdir(exist_ok=True)
        path = here / f"test_shown_{block.line}.py"
        path.write_text("\n".join(before + [text]))
        for load in (None, "0") if self.whole else (None,):
            env = {k: v for k, v in os.environ.items() if k != "CVAEQ_LOAD_PLUGINS"}
            # the example plugins, found where installed, else in this checkout
            env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", "")] + [
                str(p) for p in sorted((ROOT / "plugins").glob("cvaeq-*"))]).strip(os.pathsep)
            if load is not None:
                env["CVAEQ_LOAD_PLUGINS"] = load
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                                    cwd=here, env=env, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                self.fail(block, f"the test shown fails under pytest (CVAEQ_LOAD_PLUGINS={load or 'unset'}):\n"
                                 f"{result.stdout[-3000:]}{result.stderr[-2000:]}")

    def test_context_start(self, block: Block) -> int:
        """The line after which a shown test's helpers start: the doc's last heading before the test."""
        lines = (ROOT / self.doc).read_text().splitlines()[: block.line]
        heads = [k + 1 for k, line in enumerate(lines) if line.startswith("#")]
        return heads[-1] if heads else 0

    # toml -----------------------------------------------------------------------------------------
    def run_toml(self, block: Block) -> None:
        self.ran += 1
        try:
            data = tomllib.loads(block.text)
        except tomllib.TOMLDecodeError as e:
            self.fail(block, f"is not TOML: {e}")
            return
        if "name" in data and "factors" in data:
            from cvaeq.story import load_story

            path = self.tmp / "shown-story.toml"
            path.write_text(block.text)
            if data.get("world") in PLUGIN_OF_WORLD:
                self.install(PLUGIN_OF_WORLD[data["world"]])
            try:
                load_story(str(path))
            except Exception as e:  # noqa: BLE001 -- reported with the block
                self.fail(block, f"the story does not load: {type(e).__name__}: {e}")

    # query lists ------------------------------------------------------------------------------------
    def run_queries(self, block: Block) -> None:
        from cvaeq.query import parse

        self.ran += 1
        for line in block.text.splitlines():
            query = re.split(r"\s{2,}", line.strip())[0]
            if not query:
                continue
            try:
                parse(query if query.startswith(("P(", "E[", "PN", "PS")) else f"P({query})")
            except Exception as e:  # noqa: BLE001 -- reported with the block
                self.fail(block, f"{query!r} does not parse: {e}")


def terminal(output: str) -> str:
    """stdout and stderr as a terminal shows them: a progress bar redrawn with '\\r' leaves its last state,
    and a bar that clears itself nothing."""
    return "\n".join(line.rsplit("\r", 1)[-1].strip() if "\r" in line else line.rstrip()
                     for line in output.split("\n"))


def prepare(tmp: Path) -> None:
    """The files the docs take as already made (see the module docstring)."""
    from cvaeq.data.grid import show_image

    show_image(["shape=heart", "scale=1", "orientation=0", "posX=0.5", "posY=0.5"], str(tmp / "heart.png"))
    shutil.copy(ROOT / "cvaeq" / "weights" / "default.safetensors", tmp / "model.safetensors")
    mine = next(b for b in ALL_BLOCKS if b.matches(MY_STORY)).text
    (tmp / "my_story.toml").write_text(mine)
    (tmp / "bad.toml").write_text(mine.replace(*BAD_STORY))
    morpho = next(b for b in ALL_BLOCKS if b.matches(MORPHO_STORY)).text
    (tmp / "badlaw.toml").write_text(morpho.replace(*BAD_LAW))
    (tmp / "learned.toml").write_text(next(b for b in ALL_BLOCKS if b.matches(LEARNED_STORY)).text)
    (tmp / "cvaeq" / "weights").mkdir(parents=True)  # run from a checkout, export_checkpoint writes there


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CVAEQ_HOME", str(tmp_path / "cvaeq-home"))
    prepare(tmp_path)
    return tmp_path


def run_doc(doc: str, tmp: Path, whole: bool) -> None:
    run = DocRun(doc, tmp, whole)
    try:
        run.run()
    finally:
        run.uninstall()
    assert not run.failures, f"{len(run.failures)} example(s) of {doc} do not run as shown:\n\n" + "\n\n".join(
        run.failures)


@pytest.mark.parametrize("doc", DOCS)
def test_doc_runs(doc, in_tmp):
    run_doc(doc, in_tmp, whole=False)


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_doc_runs_whole(doc, in_tmp):
    run_doc(doc, in_tmp, whole=True)


# ---------------------------------------------------------------------------------------------------
def test_every_block_is_run_or_listed():
    unknown = [b.name for b in ALL_BLOCKS if kind(b) == "unknown"]
    assert not unknown, "blocks neither run by a rule nor listed in NOT_RUN:\n" + "\n".join(unknown)
    assert len(ALL_BLOCKS) > 80


@pytest.mark.parametrize("table", ["NOT_RUN", "SLOW", "RUN_AFTER", "APPROX", "PY_SUBSTITUTIONS", "QUERY_BLOCKS", "RUN_AS_SHOWN"])
def test_every_listing_names_a_block(table):
    stale = [key for key in globals()[table] if not any(b.matches(key) for b in ALL_BLOCKS)]
    assert not stale, f"{table} lists blocks no doc has any more: {stale}"


def test_every_command_not_run_is_shown_somewhere():
    commands = [strip_comment(p).strip() for b in ALL_BLOCKS if kind(b) == "commands"
                for c, _ in commands_of(b) for p in c.split("&&")]
    for pattern, _ in COMMANDS_NOT_RUN:
        assert any(re.search(pattern, c) for c in commands), f"COMMANDS_NOT_RUN's {pattern!r} matches no command"


def every_command():
    for b in ALL_BLOCKS:
        if kind(b) == "commands":
            for c, _ in commands_of(b):
                for p in strip_comment(c).split("&&"):
                    yield b, p.strip()


def test_every_torchrun_command_ends_its_options_with_a_double_dash():
    """torchrun takes any prefix of its own options (--n is --nnodes or --nproc-per-node: refused as ambiguous)
    unless '--' ends them; the form that works is `torchrun --nproc-per-node N -m cvaeq -- COMMAND ...`."""
    from cvaeq.cli import main

    shown = [(b, c) for b, c in every_command() if c.startswith("torchrun ")]
    helps = [h for cmd in main.commands.values() for h in re.findall(r"``(torchrun [^`]*)``", " ".join(
        (cmd.help or "").split()))]
    assert shown
    assert helps, "cvaeq eval --help shows how to run it under torchrun"
    for b, c in shown + [(None, h) for h in helps]:
        words = c.split()
        assert "-m" in words and "--" in words, f"{b.name if b else 'a --help text'}: `{c}` has no `-m MODULE --`"
        k = words.index("-m")
        assert words[k + 2] == "--", f"{b.name if b else 'a --help text'}: `{c}`: `--` must follow `-m {words[k + 1]}`"
        assert words[k + 1] in ("cvaeq", "cvaeq.cli.torchrun"), c


def test_the_placeholder_rule_tells_synopses_from_commands():
    assert PLACEHOLDER.search("cvaeq data show --world NAME FACTOR=VALUE ... --out img.png")
    assert PLACEHOLDER.search("cvaeq eval [--model CKPT] [--n 200]")
    assert PLACEHOLDER.search('cvaeq query "" [--image PATH|FACTORS]')
    assert not PLACEHOLDER.search("cvaeq data resample --n 100000 --seed 0")
    assert not PLACEHOLDER.search('cvaeq query "" --story default --samples 2000 --json')


# ---------------------------------------------------------------------------------------------------
# The plugin packaging shown in plugins.md: whole pyproject.toml files a reader can copy.
SHOWN_PYPROJECTS = {"cvaeq-ordinal": "cvaeq_ordinal", "cvaeq-pong": "cvaeq_pong"}


def shown_pyproject(dist: str) -> str:
    found = [b.text for b in ALL_BLOCKS if b.doc == "docs/plugins.md" and b.lang == "toml"
             and f'name = "{dist}"' in b.text]
    assert len(found) == 1, f"docs/plugins.md shows no (or several) whole pyproject.toml for {dist}"
    return found[0]


@pytest.mark.parametrize("dist", SHOWN_PYPROJECTS)
def test_the_plugin_pyproject_shown_is_the_plugins_own(dist):
    """Every table and key shown is the example plugin's own (the repository's file adds a readme, a
    licence and test extras), so what the page tells a reader to write is what the tested plugin ships."""
    shown = tomllib.loads(shown_pyproject(dist))
    real = tomllib.loads((ROOT / "plugins" / dist / "pyproject.toml").read_text())

    def within(a, b, where):
        for key, value in a.items():
            assert key in b, f"docs/plugins.md's pyproject for {dist} has {where}{key}, the plugin's has not"
            if isinstance(value, dict):
                within(value, b[key], f"{where}{key}.")
            else:
                assert value == b[key], f"{where}{key}: docs show {value!r}, the plugin has {b[key]!r}"

    within(shown, real, "")
    assert shown["project"]["entry-points"]["cvaeq"] == real["project"]["entry-points"]["cvaeq"]
    assert {"build-system", "project", "tool"} <= set(shown)


@pytest.mark.slow
@pytest.mark.parametrize("dist", SHOWN_PYPROJECTS)
def test_a_plugin_written_from_the_docs_installs_and_is_found(dist, tmp_path):
    """The shown pyproject.toml beside the package's module, installed with pip (offline: no index, the
    installed setuptools): the installed distribution declares the `cvaeq` entry point, and the files
    the plugin needs (pong's story) are in it."""
    import subprocess
    import sys
    from importlib.metadata import distributions

    pytest.importorskip("setuptools", minversion="77", reason="the shown build-system (offline: no build isolation)")
    module = SHOWN_PYPROJECTS[dist]
    src = tmp_path / "src"
    shutil.copytree(ROOT / "plugins" / dist / module, src / module,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (src / "pyproject.toml").write_text(shown_pyproject(dist))
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation", "--quiet",
         "--target", str(target), str(src)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (found,) = [d for d in distributions(path=[str(target)]) if d.metadata["Name"] == dist]
    assert [(e.name, e.value) for e in found.entry_points if e.group == "cvaeq"] == [(dist, module)]
    installed = {str(f) for f in found.files}
    assert f"{module}/__init__.py" in installed
    for data in (ROOT / "plugins" / dist / module).glob("*.toml"):
        assert f"{module}/{data.name}" in installed, f"{data.name} is not installed with the package"
