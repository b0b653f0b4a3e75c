"""`zoo bench`: onnxruntime against PyTorch eager for every model and exported part.

The measuring code lives in ``zoo.export.bench`` (benchmarks/inference.py runs the same); nothing
here imports torch at module level, so `zoo --help` stays fast.
"""

from pathlib import Path

import click


@click.command("bench")
@click.argument("models", nargs=-1)
@click.option("--quick", is_flag=True, help="A smoke run (well under a minute): every code path, few calls.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the results (default: benchmarks/results in the checkout).")
@click.option("--threads", multiple=True, type=click.IntRange(1),
              help="Thread count for both runtimes; repeat for several (default: 1 and all cores).")
@click.option("--batch", "batches", multiple=True, type=click.IntRange(1),
              help="Batch size; repeat for several (default: 1 8 64 256 1024; --quick: 1 64).")
@click.option("--tune/--no-tune", default=None,
              help="Choose onnxruntime's session options per artifact from measurement (default: on).")
@click.option("--compare", "compare_with", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An earlier result JSON: report how far each cell's torch/ORT ratio moved.")
def bench_cmd(models, quick, out_dir, threads, batches, tune, compare_with):
    """Time onnxruntime against PyTorch eager on MODELS (wildcards; default: every model).

    For each exported part (encoder, decoder, generator), batch size and thread count: p50/p90/p99
    latency, samples/s, GFLOP/s against a measured matmul ceiling, and max abs difference. Writes
    inference-<machine>-<date>.json, .md and .png.

    \b
    zoo bench                    the full run (a few minutes on 2 cores)
    zoo bench vae deep-ae --quick --out /tmp/bench
    """
    from .export.bench import run_benchmark  # imports torch

    written = run_benchmark(models, quick=quick, out_dir=out_dir, threads=threads, batches=batches, tune=tune,
                            compare_with=compare_with, log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {written['json']}, {written['markdown'].name} and {written['plot'].name} "
               f"in {written['result']['seconds']:.0f} s")


COMMANDS = [bench_cmd]
