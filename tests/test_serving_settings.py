"""The serving settings are defined once (zoo.export.serving_settings): `zoo export --repository` and
`zoo serve` build their options from that table, and the table of them in docs/serving-repository.md is
that table."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.export import serving_settings
from zoo.export.serving_settings import SETTINGS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "serving-repository.md"


def readme_row(setting) -> str:
    flag = f"`{setting.flag}`" if setting.flag else "none: config.pbtxt only"
    absent = "required" if setting.triton_default is None else f"{setting.triton_default:g}"
    return f"| {flag} | `{setting.field}` | {setting.default:g} | {absent} | {setting.meaning} |"


def test_the_readme_table_is_the_table():
    header = "| flag | config.pbtxt field | default | left out of config.pbtxt | meaning |\n|---|---|---|---|---|\n"
    assert header + "".join(readme_row(s) + "\n" for s in SETTINGS) in PAGE.read_text()


def option(command_name: str, flag: str) -> click.Option:
    command = cli.get_command(click.Context(cli), command_name)
    return next(p for p in command.params if isinstance(p, click.Option) and flag in p.opts)


@pytest.mark.parametrize("command", ["export", "serve"])
@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.flag], ids=lambda s: s.flag)
def test_both_commands_take_each_setting_from_the_table(command, setting):
    found = option(command, setting.flag)
    assert found.name == setting.name and found.default == setting.default
    assert found.help.startswith(setting.meaning) and setting.field in found.help
    assert (found.type.min, found.type.max) == (setting.low, setting.high)


@pytest.fixture
def probe():
    """A command with the settings' options that records the ``serving`` it is given."""
    seen = []

    @click.command()
    @serving_settings.options(lambda setting: "")
    def command(serving):
        seen.append(serving)

    return command, seen


@pytest.mark.parametrize(
    "args, serving",
    [
        ([], {}),
        (["--max-delay-ms", "0"], {"max_delay_ms": 0.0}),  # a value equal to nothing's default is still given
        (["--max-batch", "1024"], {"max_batch": 1024}),  # nor is a value equal to the default dropped
        (["--threads", "2", "--instances", "3"], {"intra_op_threads": 2, "instances": 3}),
    ],
)
def test_only_the_settings_given_are_passed_on(probe, args, serving):
    command, seen = probe
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    assert seen == [serving]


def test_a_setting_given_through_the_environment_counts_as_given(probe):
    command, seen = probe
    result = CliRunner().invoke(command, [], auto_envvar_prefix="ZOO", env={"ZOO_MAX_DELAY_MS": "0.5"})
    assert result.exit_code == 0, result.output
    assert seen == [{"max_delay_ms": 0.5}]


@pytest.mark.parametrize("args", [["--instances", "65"], ["--max-delay-ms", "-1"], ["--max-batch", "0"]])
def test_out_of_range_is_a_usage_error(probe, args):
    command, seen = probe
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2 and args[0] in result.output and seen == []


def test_the_banner_describes_each_setting_from_the_table():
    from zoo.serve.inference.models import Serving, describe_serving

    sources = {s.name: "default" for s in SETTINGS}
    assert describe_serving(Serving(), sources) == (
        "max batch 1024, delay 2 ms, 1 instance, intra-op threads auto, inter-op threads auto; unmarked: defaults"
    )
    sources = {s.name: "config.pbtxt" for s in SETTINGS}
    line = describe_serving(Serving(max_delay_ms=0, instances=2, intra_op_threads=3), sources)
    assert line == (
        "max batch 1024 [config.pbtxt], delay 0 ms [config.pbtxt], 2 instances [config.pbtxt], "
        "intra-op threads 3 [config.pbtxt], inter-op threads auto [config.pbtxt]"
    )


def test_the_banner_says_when_each_request_runs_alone():
    from zoo.serve.inference.models import Serving, describe_serving

    sources = {s.name: "default" for s in SETTINGS}
    assert describe_serving(Serving(max_delay_ms=0, dynamic_batching=False), sources).endswith(
        "inter-op threads auto, each request alone [config.pbtxt has no dynamic_batching]; unmarked: defaults"
    )
