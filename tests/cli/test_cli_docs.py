"""docs/cli.md stays true: every command has a section, every query option is
documented, and its runnable query examples run."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

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


EXAMPLES = [line[2:] for line in DOC.splitlines() if line.startswith("$ cvaeq query") and "--story" in line]


@pytest.mark.parametrize("line", EXAMPLES)
def test_story_examples_run(line):
    args = shlex.split(line)[1:]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?|#+")


def same_up_to_sampling(shown: str, printed: str) -> bool:
    """The same text, with numbers within sampling noise (0.05 absolute or 15%)
    and probability bars of any length: the engine's exact draws may change."""
    if NUMBER.split(shown) != NUMBER.split(printed):
        return False
    for a, b in zip(NUMBER.findall(shown), NUMBER.findall(printed)):
        if a.startswith("#") or b.startswith("#"):
            continue
        x, y = float(a), float(b)
        if abs(x - y) > max(0.05, 0.15 * abs(x)):
            return False
    return True


def test_shown_outputs_are_what_the_command_prints():
    blocks = re.findall(r"```console\n\$ (cvaeq query [^\n]*--story[^\n]*)\n(.*?)```", DOC, re.S)
    assert blocks
    for command, shown in blocks:
        if not shown.strip() or "$ cvaeq" in shown:  # a list of commands, no output shown
            continue
        result = CliRunner().invoke(main, shlex.split(command)[1:])
        assert same_up_to_sampling(shown, result.stdout), f"{command}\n--- docs/cli.md shows:\n{shown}\n--- it prints:\n{result.stdout}"


def test_sampling_tolerance_still_catches_wrong_text():
    assert same_up_to_sampling("square 0.75 ###\n", "square 0.77 #####\n")
    assert not same_up_to_sampling("square 0.75\n", "square 0.35\n")
    assert not same_up_to_sampling("kind: observational 1\n", "kind: interventional 1\n")


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
