"""The commands that only read the registry, and every command's --help, import no torch, numpy or
onnx: they answer at once. Each command runs in-process, in a fresh interpreter, as the CLI runs it;
how long they take is measured by `python -m benchmarks.startup.cli_startup`, not here."""

import json
import os
import subprocess
import sys

import pytest

# Heavy to import (torch, numpy, onnx) or only needed once a command runs (the servers' libraries:
# the tritonclient package pulls in grpc, about 0.3 s).
HEAVY = ("torch", "numpy", "onnx", "onnxruntime", "onnxscript", "tritonclient", "grpc", "uvicorn", "starlette")

# Runs the commands one after another in one interpreter and reports, per command, its exit status
# and the heavy modules loaded so far: a command that imports one shows up as the first to have it.
# Standalone mode, as the `zoo` script runs: every command ends in SystemExit with its status (outside
# it, click returns a ctx.exit code and raises usage errors instead, and a failure could pass as 0).
PROBE = f"""
import json, sys
from zoo.cli import cli

heavy = {HEAVY!r}
report = []
for args in json.loads(sys.argv[1]):
    try:
        cli.main(args, prog_name="zoo", standalone_mode=True)
        code = "returned without exiting"
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1 if exc.code else 0
    report.append({{"args": args, "exit": code, "heavy": sorted(m for m in heavy if m in sys.modules)}})
print(json.dumps(report))
"""

# A third-party command that fails by ctx.exit, the way a click command says "no" without an error.
EXITING_COMMAND = """
import click
import zoo


@zoo.hookimpl
def register_commands(cli):
    @cli.command("exit-three")
    def exit_three():
        click.get_current_context().exit(3)
"""


def all_commands() -> list:
    """Every command `zoo --help` lists, the built-in plugins' included, so a new one is checked too."""
    import click

    from zoo.cli import cli

    return cli.list_commands(click.Context(cli))


COMMANDS = all_commands()


def run_in_process(*commands, env=None):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list"],
        ["list", "--json"],
        ["plugins"],
        ["datasets", "--json"],
        *[[command, "--help"] for command in COMMANDS],
    ],
    ids=" ".join,
)
def test_command_imports_no_heavy_module(args):
    [report] = run_in_process(args)
    assert report == {"args": args, "exit": 0, "heavy": []}


def test_the_probe_records_each_way_a_command_fails(tmp_path):
    from helpers import install_distribution

    install_distribution(tmp_path, "zoo-exit", "zoo_exit", EXITING_COMMAND, {"exit": "zoo_exit"})
    reports = run_in_process(
        ["exit-three"],
        ["list", "--no-such-option"],
        ["info", "no-such-model"],
        ["list"],
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert [report["exit"] for report in reports] == [3, 2, 2, 0]  # a usage error, an unknown model: 2


def test_zoo_info_builds_once_then_answers_from_the_cache(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    [first] = run_in_process(["info", "vae", "--json"], env=env)
    assert first["exit"] == 0 and "torch" in first["heavy"]  # the first answer needs the model built
    [again, changed] = run_in_process(["info", "vae"], ["info", "vae", "--set", "latent=5", "--json"], env=env)
    assert again == {"args": ["info", "vae"], "exit": 0, "heavy": []}
    assert changed["exit"] == 0 and "torch" in changed["heavy"]  # another setting: built again


def test_zoo_info_cache_gives_the_numbers_building_gives(tmp_path):
    from helpers import run_zoo

    env = {"XDG_CACHE_HOME": str(tmp_path)}
    built = json.loads(run_zoo("info", "conv-ae", "--set", "latent=4", "--json", env=env, check=True).stdout)
    cached = json.loads(run_zoo("info", "conv-ae", "--set", "latent=4", "--json", env=env, check=True).stdout)
    assert cached == built and built["latent_shape"] == [4, 7, 7]
    (tmp_path / "zoo" / "model-facts.json").write_text("{not json")  # a damaged cache is rebuilt, not an error
    assert json.loads(run_zoo("info", "conv-ae", "--set", "latent=4", "--json", env=env, check=True).stdout) == built
