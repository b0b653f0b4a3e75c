"""The command synopsis of docs/reference/cli.md (the block under "## Synopsis") names every command
`zoo --help` lists, every option of each, and no option a command does not have: a new option, or a
renamed one, cannot leave it stale. And the Python example's list_models comment (docs/training.md)
is what the call returns."""

import ast
import re
from pathlib import Path

import click
import pytest

import zoo
from zoo.cli import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"
SYNOPSIS = DOCS / "reference" / "cli.md"
PYTHON_EXAMPLE = DOCS / "training.md"
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def synopsis() -> dict:
    """{command: the text of its lines}, from the first code block after "## Synopsis": a line
    "zoo NAME ..." starts a command's entry (a command may have several), indented lines continue it."""
    block = SYNOPSIS.read_text().split("## Synopsis", 1)[1].split("```", 2)[1]
    entries, current = {}, None
    for line in block.splitlines():
        if line.startswith("zoo "):
            current = line.split()[1]
            entries[current] = entries.get(current, "") + " " + line
        elif line.strip() and current is not None:
            entries[current] += " " + line
    return entries


def commands() -> dict:
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def options(command: click.Command) -> list:
    """Each visible option's spellings (["-n", "--count"], ["--tune", "--no-tune"]), --help aside."""
    return [
        [*p.opts, *p.secondary_opts]
        for p in command.params
        if isinstance(p, click.Option) and not p.hidden and p.name != "help"
    ]


def flags_in(text: str) -> set:
    return set(FLAG.findall(text))


def test_every_command_has_an_entry():
    assert sorted(synopsis()) == sorted(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_of_the_command_is_in_its_entry(name):
    shown = flags_in(synopsis().get(name, ""))
    missing = ["/".join(spellings) for spellings in options(commands()[name]) if not shown & set(spellings)]
    assert not missing, f"the synopsis of zoo {name} lacks {missing}"


@pytest.mark.parametrize("name", sorted(commands()))
def test_the_entry_names_no_option_the_command_lacks(name):
    real = {spelling for spellings in options(commands()[name]) for spelling in spellings}
    assert flags_in(synopsis().get(name, "")) <= real, f"the synopsis of zoo {name} names options it lacks"


def test_the_scan_reads_each_spelling():
    assert flags_in("zoo x [-n N] [--tune/--no-tune] [--max-delay-ms T] key=value --set") == {
        "-n",
        "--tune",
        "--no-tune",
        "--max-delay-ms",
        "--set",
    }


def test_the_list_models_example_says_what_it_returns():
    example = PYTHON_EXAMPLE.read_text()
    pattern, comment = re.search(r'zoo\.list_models\("([^"]*)"\)\)?\s*#\s*(\[.*?\])', example).groups()
    assert zoo.list_models(pattern) == ast.literal_eval(comment)
