"""The export package's commands: `zoo export` (torch -> ONNX), `zoo sample` (onnxruntime only)
and `zoo bench` (onnxruntime against PyTorch). They reach the CLI through the ``register_commands``
hook, as a built-in plugin in the "zoo" entry-point group, the way a third party adds a command.

Nothing here imports torch at module level: `zoo sample` has to work where only numpy and
onnxruntime are installed, and `zoo --help` should stay fast.
"""

from pathlib import Path

import click

import zoo
from zoo.core.errors import ZooError
from zoo.export import serving_settings

MAX_GRID = 4096  # samples in one PNG: a 64 x 64 grid of 28x28 digits is already 3840 px wide


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the .onnx files (default: the run folder).",
)
@click.option("--opset", default=18, show_default=True, type=int, help="ONNX opset to target (18 or newer).")
@click.option(
    "--repository",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also add the files to this model repository (Triton's layout, which `zoo serve`, "
    "Triton and KServe serve): DIR/<run name>-<part>/config.pbtxt and 1/model.onnx.",
)
@serving_settings.options(lambda setting: f"Written to config.pbtxt ({setting.field}) for Triton and `zoo serve`.")
def export_cmd(run, out_dir, opset, repository, serving):
    """Export run folder RUN to encoder.onnx, decoder.onnx, generator.onnx and scorer.onnx.

    \b
    encoder.onnx    x [batch, *data_shape] -> z (or mu, logvar for a VAE)
    decoder.onnx    z [batch, *latent_shape] -> x_hat
    generator.onnx  eps [batch, noise_dim] ~ N(0, I) -> x_hat (the latent prior is in the graph)
    scorer.onnx     x [batch, *data_shape] -> score [batch], anomalous [batch] (bool: above the
                    threshold training set; only for a run that has one, threshold.json)

    Each file is self-contained, has a dynamic batch dimension and carries zoo.* metadata
    (shapes, prior, config). Every file is checked with onnx.checker and against PyTorch in
    onnxruntime before it is written; if any check fails, nothing is written.

    \b
    zoo export runs/vae --repository models    models/vae-encoder, vae-decoder, vae-generator
    zoo export runs/vae --repository models --max-delay-ms 2 --threads 1 --instances 2
    """
    if repository is None and serving:  # refused before the export, which takes a while, rather than ignored after it
        given = ", ".join(serving_settings.BY_NAME[name].flag for name in serving)
        raise click.UsageError(f"{given} set what config.pbtxt says; give --repository DIR with them")
    from zoo.export.onnx import export_artifacts  # imports torch
    from zoo.export.repository import write_model

    for artifact in export_artifacts(run, out_dir, opset):
        click.echo(
            f"wrote {artifact.path}  ({_size(artifact.bytes)}, max abs error vs PyTorch {artifact.max_abs_error:.1e})"
        )
        if repository is not None:
            # The same names `zoo serve RUN` gives: the run folder's name, then the part.
            folder = write_model(repository, f"{run.resolve().name}-{artifact.part}", artifact.path, **serving)
            click.echo(f"wrote {folder}/config.pbtxt and {folder}/1/model.onnx")


@click.command("sample")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-n", "--count", default=64, show_default=True, type=click.IntRange(1, MAX_GRID), help="Number of samples."
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Random seed: the same seed gives the same picture.",
)
@click.option(
    "-o",
    "--output",
    default="samples.png",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write: a .png grid, or .npy for the raw float32 array.",
)
@click.option("--threads", default=0, type=click.IntRange(0), help="onnxruntime intra-op threads (0: its default).")
def sample_cmd(file, count, seed, output, threads):
    """Draw samples from FILE, a generator.onnx or decoder.onnx written by `zoo export`.

    A generator takes N(0, I) noise; for a decoder, codes are drawn from the latent prior stored
    in its metadata. Needs only numpy and onnxruntime (no torch).

    \b
    zoo sample runs/vae/generator.onnx -n 64 --seed 0 -o digits.png
    """
    import numpy as np

    from zoo.core.atomic import atomic_write
    from zoo.export import runtime

    suffix = output.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise ZooError(f"-o {output}: write a .png picture or a .npy array")
    model = runtime.load(file, intra_op_num_threads=threads)
    if not hasattr(model, "sample"):
        raise ZooError(f"{file} is a zoo {model.part}; sample from generator.onnx or decoder.onnx")
    images = model.sample(count, seed=seed)
    if suffix == ".npy":

        def write(tmp):
            with open(tmp, "wb") as f:  # a file object: np.save would add ".npy" to a bare name
                np.save(f, images)

        atomic_write(output, write)
        click.echo(f"wrote {output}  ({count} samples of shape {list(model.data_shape)}, float32)")
        return
    shape = model.data_shape
    if not (len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3))):
        raise ZooError(f"{model.model} samples have shape {list(shape)}, not images; write them with -o FILE.npy")
    runtime.save_grid(output, images)
    click.echo(f"wrote {output}  ({count} samples from {model.model}, seed {seed})")


@click.command("bench")
@click.argument("models", nargs=-1)
@click.option("--quick", is_flag=True, help="A smoke run (well under a minute): every code path, few calls.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the results (default: benchmarks/results in a source checkout, "
    "./benchmark-results from a wheel install).",
)
@click.option(
    "--threads",
    multiple=True,
    type=click.IntRange(1),
    help="Thread count for both runtimes; repeat for several (default: 1 and all cores).",
)
@click.option(
    "--batch",
    "batches",
    multiple=True,
    type=click.IntRange(1),
    help="Batch size; repeat for several (default: 1 8 64 256 1024; --quick: 1 64).",
)
@click.option(
    "--tune/--no-tune",
    default=None,
    help="Choose onnxruntime's session options per artifact from measurement (default: on).",
)
@click.option(
    "--compare",
    "compare_with",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier result JSON: report how far each cell's torch/ORT ratio moved.",
)
def bench_cmd(models, quick, out_dir, threads, batches, tune, compare_with):
    """Time onnxruntime against PyTorch eager on MODELS (wildcards; default: every model).

    For each exported part (encoder, decoder, generator), batch size and thread count: p50/p90/p99
    latency, samples/s, GFLOP/s against a measured matmul ceiling, and max abs difference. Writes
    inference-<machine>-<date>.json, .md and .png.

    \b
    zoo bench                    the full run (a few minutes on 2 cores)
    zoo bench vae deep-ae --quick --out /tmp/bench
    """
    from zoo.export.bench import run_benchmark  # imports torch

    written = run_benchmark(
        models,
        quick=quick,
        out_dir=out_dir,
        threads=threads,
        batches=batches,
        tune=tune,
        compare_with=compare_with,
        log=lambda m: click.echo(m, err=True),
    )
    click.echo(
        f"wrote {written['json']}, {written['markdown'].name} and {written['plot'].name} "
        f"in {written['result']['seconds']:.0f} s"
    )


@zoo.hookimpl
def register_commands(cli):
    for command in (export_cmd, sample_cmd, bench_cmd):
        cli.add_command(command)
