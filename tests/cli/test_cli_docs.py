"""docs/cli.md stays true: every command has a section, every option and bound is
documented (its examples run under tests/test_docs_run.py)."""

from pathlib import Path

import click
import pytest

from cvaeq.cli import main

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def commands(group, prefix="cvaeq"):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


@pytest.mark.parametrize("command", list(commands(main)))
def test_every_command_has_a_section(command):
    assert f"## {command}\n" in DOC, f"docs/cli.md has no '## {command}' section"


def section(command: str) -> str:
    start = DOC.index(f"## {command}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else len(DOC)]


def options():
    for command in commands(main):
        cmd = main
        for name in command.split()[1:]:
            cmd = cmd.commands[name]
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    yield command, opt


@pytest.mark.parametrize("command,option", list(options()))
def test_every_option_is_documented_in_its_section(command, option):
    assert f"--{option.lstrip('-')}" in section(command), f"docs/cli.md's '## {command}' does not mention {option}"


# The examples' runs and their shown outputs: tests/test_docs_run.py (every doc, every block).


def bounded_options():
    from cvaeq.limits import MAX_SEED

    for command in commands(main):
        cmd = main
        for name in command.split()[1:]:
            cmd = cmd.commands[name]
        for param in cmd.params:
            if isinstance(param.type, click.IntRange) and param.type.max is not None:
                text = "2**63 - 1" if param.type.max == MAX_SEED else f"{param.type.max:,}"
                yield command, param.opts[0], text


@pytest.mark.parametrize("command,option,bound", list(bounded_options()))
def test_every_count_bound_is_documented_in_its_section(command, option, bound):
    assert bound in section(command), f"docs/cli.md's '## {command}' does not give {option}'s bound {bound}"


def test_every_count_option_has_a_bound():
    # an integer option without a bound is a way to flood memory with one typo
    for command in commands(main):
        cmd = main
        for name in command.split()[1:]:
            cmd = cmd.commands[name]
        for param in cmd.params:
            if isinstance(param.type, click.IntRange) or param.type is click.INT:
                if (command, param.name) == ("cvaeq query", "samples"):
                    continue  # bounded by ask(): 10,000 with X, 1,000,000 without (documented there)
                assert isinstance(param.type, click.IntRange) and param.type.max is not None, (command, param.name)
