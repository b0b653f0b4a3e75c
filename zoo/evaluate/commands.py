"""``zoo eval`` and ``zoo score``: what a finished run measures on its test split or scores in a
folder. Only click and the core load with them (the ``zoo`` group adds them, and its listing stays
torch-free); the work loads when a command runs."""

import click

from zoo.core.command_options import cpu_device_option, data_dir_option, json_option
from zoo.core.command_output import emit_json, table


@click.command("eval")
@click.argument("run", type=click.Path())
@click.option(
    "--data",
    type=click.Path(),
    help="Evaluate on this folder or array file instead of the run's own data, prepared the same way.",
)
@data_dir_option
@cpu_device_option
@click.option(
    "--nll",
    is_flag=True,
    help="Importance-weighted negative log-likelihood on the binarized test split instead (the 8-bit "
    "one for likelihood=logistic), in nats per image and bits per dimension.",
)
@click.option(
    "--iw-samples",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="k, the samples per image of --nll.",
)
@click.option(
    "--nll-images", type=click.IntRange(min=0), default=0, help="--nll on the first N test images only (0: all)."
)
@json_option
def eval_cmd(run, data, data_dir, device, nll, iw_samples, nll_images, as_json):
    """Test-split metrics of the run folder RUN (mse, bce, and each model's own), or with --nll the
    importance-weighted NLL in nats per image (Burda et al.'s protocol: binarized test split, k=5000)."""
    from zoo.evaluate.metrics import evaluate, evaluate_nll

    if nll:
        report = evaluate_nll(
            run, k=iw_samples, images=nll_images, data_dir=data_dir, device=device, progress=True, data=data
        )
        if as_json:
            return emit_json(report)
        click.echo(
            f"{report['model']} on {report['dataset']}: NLL {report['nll']:.2f} ± {report['nll_stderr']:.2f} "
            f"nats per image, {report['nll_bits_per_dim']:.4f} bits per dimension "
            f"(k={report['iw_samples']:,}, {report['test_images']:,} test images)"
        )
        cuda = f", CUDA peak {report['peak_cuda_bytes'] / 2**20:,.0f} MiB" if report["peak_cuda_bytes"] else ""
        click.echo(f"  binarization   {report['binarization']}")
        click.echo(
            f"  chunks         {report['chunk_images']:,} image(s) x {report['chunk_samples']:,} draws per call "
            f"(the fastest size timed; draws seeded with {report['seed']})"
        )
        click.echo(
            f"  time           {report['seconds']:.2f} s ({report['images_per_second']:.1f} images/s on "
            f"{report['device']}); peak RSS {report['peak_rss_bytes'] / 2**20:,.0f} MiB{cuda}"
        )
        if "note" in report:
            click.echo(f"  note           {report['note']}")
        return
    metrics = evaluate(run, data_dir=data_dir, device=device, data=data)
    if as_json:
        return emit_json(metrics)
    click.echo(f"{metrics['model']} on {metrics['dataset']} test split ({metrics['test_samples']:,} samples)")
    for key, value in metrics.items():
        if isinstance(value, float):
            click.echo(f"  {key:<14} {value:.6g}")


@click.command("score")
@click.argument("run", type=click.Path())
@click.option(
    "--data",
    type=click.Path(),
    help="Score every file of this folder (or every row of this array file), prepared as the run's data was.",
)
@click.option("--dataset", help="Score this registered dataset instead of the run's own data.")
@data_dir_option
@click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    help="Which split to score: of the run's own data or --dataset (default test); with --data, that split of "
    "PATH drawn as for training instead of every file.",
)
@click.option(
    "--top",
    default=32,
    show_default=True,
    type=click.IntRange(0, 1024),
    help="How many of the most anomalous inputs top.png shows over their reconstructions.",
)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for scores.csv and top.png (default RUN/scores).")
@click.option(
    "--normal",
    multiple=True,
    metavar="LABEL",
    help="A label that counts as normal (repeat for several): prints the AUROC and average precision.",
)
@cpu_device_option
@json_option
def score_cmd(run, data, dataset, data_dir, split, top, out, normal, device, as_json):
    """Anomaly scores of every file of --data PATH (every row of an array), or of a split of the run's
    own data: the model's own score (reconstruction error, or a VAE's negative ELBO at the posterior
    mean), sorted from the most to the least anomalous into scores.csv, with each file's path for a
    folder, and the top inputs over their reconstructions in top.png."""
    from zoo.evaluate.score import score_run

    report = score_run(
        run,
        data=data,
        dataset=dataset,
        data_dir=data_dir,
        split=split,
        top=top,
        out=out,
        normal=normal,
        device=device,
        progress=True,
    )
    if as_json:
        return emit_json(report)
    what = "files or rows" if report["split"] == "every file or row" else f"{report['split']} samples"
    click.echo(f"scored {report['samples']:,} {what} of {report['data']}: {report['definition']}")
    if report["threshold"] is not None:
        click.echo(f"  {report['flagged']:,} above the run's threshold {report['threshold']:.6g}")
    click.echo(f"  wrote {report['csv']}" + (f" and {report['picture']}" if report["picture"] else ""))
    if report["caveat"]:
        click.echo(f"note: {report['caveat']}", err=True)
    if "separation" in report:
        sep = report["separation"]
        click.echo(
            f"normal: {', '.join(sep['normal'])} ({sep['normal_samples']:,} samples); anomalies: {sep['anomalies']:,}"
        )
        rows = [
            [name, f"{v['samples']:,}", f"{v['auroc']:.4f}", f"{v['average_precision']:.4f}"]
            for name, v in sep["per_label"].items()
        ]
        rows.append(["overall", f"{sep['anomalies']:,}", f"{sep['auroc']:.4f}", f"{sep['average_precision']:.4f}"])
        table(rows, ["ANOMALY LABEL", "SAMPLES", "AUROC", "AVERAGE PRECISION"])
