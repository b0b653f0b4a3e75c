"""The model serving settings, each defined once: its flag, where config.pbtxt holds it, its default,
what Triton does when config.pbtxt leaves it out, its range and its meaning.

`zoo export --repository` writes them into config.pbtxt, `zoo serve` reads them back (a flag given to
it overrides the file), and both commands build their options from this table, so a setting has
one name, one default and one help text wherever it appears. Only click is imported here:
`zoo --help` reads this table.

A setting means what Triton means by it. Where config.pbtxt leaves a field out, `zoo serve` does
what Triton 2.51 does (its core's model_config_utils.cc and its onnxruntime backend): no queue delay,
and two instances of an onnxruntime model on a machine without a GPU. `zoo export` writes every
setting whose default differs from Triton's, so both servers run an exported model the same way.
"""

import functools
from dataclasses import dataclass

import click
from click.core import ParameterSource

MAX_THREADS = 2**31 - 1  # Triton's onnxruntime backend parses the thread parameters into a C int


@dataclass(frozen=True)
class Setting:
    name: str  # the keyword both commands and zoo.serve.inference.models.Serving use
    flag: str | None  # the option of `zoo export --repository` and `zoo serve`; None: config.pbtxt only
    field: str  # where Triton's ModelConfig holds it
    default: int | float  # without config.pbtxt (a run folder, an .onnx file), and what `zoo export` writes
    triton_default: int | float | None  # what Triton runs when config.pbtxt leaves it out; None: required
    low: int | float
    high: int | float
    meaning: str  # the help text's first sentence
    shown: str  # the banner's words, formatted with the value as {v} (and {auto}, {s})

    @property
    def type(self):
        kind = click.FloatRange if isinstance(self.default, float) else click.IntRange
        return kind(self.low, self.high)

    def describe(self, value) -> str:
        return self.shown.format(v=value, auto=value or "auto", s="" if value == 1 else "s")


SETTINGS = (
    Setting(
        "max_batch",
        "--max-batch",
        "max_batch_size",
        1024,
        None,
        1,
        65536,
        "Most rows per request (more get 400, as in Triton) and per merged onnxruntime call "
        "(1: one row per request, no micro-batching).",
        "max batch {v}",
    ),
    Setting(
        "max_delay_ms",
        "--max-delay-ms",
        "dynamic_batching.max_queue_delay_microseconds",
        2.0,
        0.0,
        0.0,
        1000.0,
        "Longest a queued request waits for others to join its batch (0: no waiting; requests queued "
        "meanwhile still share a call).",
        "delay {v:g} ms",
    ),
    Setting(
        "instances",
        "--instances",
        "instance_group.count",
        1,
        2,
        1,
        64,
        "onnxruntime sessions per model running calls in parallel, each on a thread of its own.",
        "{v} instance{s}",
    ),
    Setting(
        "intra_op_threads",
        "--threads",
        "parameters.intra_op_thread_count",
        0,
        0,
        0,
        MAX_THREADS,
        "onnxruntime threads within one call, per instance (0: onnxruntime's default, one per core).",
        "intra-op threads {auto}",
    ),
    # No flag, as it changes nothing here: read from config.pbtxt, where Triton reads it, and passed
    # on to onnxruntime as Triton passes it, for a file written for Triton to be served as it would be.
    Setting(
        "inter_op_threads",
        None,
        "parameters.inter_op_thread_count",
        0,
        0,
        0,
        MAX_THREADS,
        "onnxruntime threads across operators (0: onnxruntime's default), used only in its parallel "
        "execution mode, which neither Triton's backend (by default) nor zoo serve turns on.",
        "inter-op threads {auto}",
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
DEFAULTS = {setting.name: setting.default for setting in SETTINGS}


def options(tail):
    """A decorator adding one click option per setting with a flag, whose help is the setting's
    meaning followed by ``tail(setting)`` (what the command does with it). The command receives
    ``serving``: {name: value} of the settings given on the command line or through the
    environment, and no keyword per setting."""

    def decorate(command):
        @functools.wraps(command)
        def given_only(*args, **kwargs):
            ctx = click.get_current_context()
            serving = {}
            for setting in SETTINGS:
                if setting.flag is None:
                    continue
                value = kwargs.pop(setting.name)
                if ctx.get_parameter_source(setting.name) not in (ParameterSource.DEFAULT, None):
                    serving[setting.name] = value
            return command(*args, serving=serving, **kwargs)

        for setting in reversed([s for s in SETTINGS if s.flag]):  # so that --help lists them in table order
            given_only = click.option(
                setting.flag,
                setting.name,
                default=setting.default,
                show_default=True,
                type=setting.type,
                help=f"{setting.meaning} {tail(setting)}",
            )(given_only)
        return given_only

    return decorate
