"""The ``zoo`` command line. Each command is a thin layer over the Python API."""

import os

import click

from zoo.core.command_errors import fail, one_line_errors, run_command  # noqa: F401 (run_command: the API)
from zoo.core.command_options import data_dir_option, json_option
from zoo.core.command_output import emit_json, table
from zoo.core.errors import ZooError, ZooUsageError
from zoo.evaluate.commands import eval_cmd, score_cmd


class ZooGroup(click.Group):
    """The ``zoo`` group: adds the commands plugins register (``register_commands``) before it lists
    or looks up a command, and turns every error into one line and a non-zero exit."""

    _builtin: dict | None = None  # the commands defined in this module, before any plugin's
    _loaded_for = None  # the registry whose plugins' commands are in self.commands

    def _add_plugin_commands(self) -> None:
        from zoo.core.registry import current

        registry = current()
        if self._loaded_for is registry:
            return
        if self._builtin is None:
            self._builtin = dict(self.commands)
        self.commands = dict(self._builtin)  # a plugin (un)registered in code: start again
        self._loaded_for = registry
        registry.add_commands(self)

    def list_commands(self, ctx):
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._add_plugin_commands()
        return super().get_command(ctx, name)

    def main(self, *args, **kwargs):
        # Plugin commands are added while click parses (for --help too), before invoke runs.
        try:
            return super().main(*args, **kwargs)
        except ZooError as exc:
            fail(exc)

    def invoke(self, ctx):
        with one_line_errors(lambda: " ".join(filter(None, ["zoo", ctx.invoked_subcommand]))):
            return super().invoke(ctx)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoencoder-zoo")
def cli():
    """autoencoder-zoo: train, evaluate and export autoencoders from a plugin registry.

    \b
    Try:
      zoo list                  the models you can train
      zoo train vae --out runs/vae
      zoo eval runs/vae
      zoo export runs/vae       encoder.onnx, decoder.onnx, generator.onnx
      zoo sample runs/vae/generator.onnx -o digits.png
    """


@cli.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(pattern, as_json):
    """List the registered models (PATTERN filters with wildcards, e.g. '*ae')."""
    from zoo.core.registry import current, list_models

    models = current().models
    rows = [
        {
            "name": n,
            "summary": models[n].spec.summary,
            "default_dataset": models[n].spec.default_dataset,
            "plugin": models[n].plugin,
        }
        for n in list_models(pattern)
    ]
    if as_json:
        return emit_json(rows)
    table(
        [[r["name"], r["default_dataset"], r["plugin"], r["summary"]] for r in rows],
        ["NAME", "DATASET", "PLUGIN", "SUMMARY"],
    )


@cli.command()
@click.argument("name")
@click.option("--dataset", help="Data shape from this dataset instead of the model's default.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config value.")
@json_option
def info(name, dataset, sets, as_json):
    """Config defaults, shapes and parameter count of model NAME.

    The parameter count and latent shape come from building the model once; the answer is cached
    (under ~/.cache/zoo), so asking again is instant."""
    from zoo.core.config import make_config, parse_sets, to_dict
    from zoo.core.registry import current, get_dataset, get_spec
    from zoo.models.facts import model_facts

    spec = get_spec(name)
    data = get_dataset(dataset or spec.default_dataset)
    config = make_config(spec.config, parse_sets(sets))
    plugin = current().models[name].plugin
    facts = model_facts(spec, config, tuple(data.data_shape), current().infos[plugin].version)
    out = {
        "name": spec.name,
        "summary": spec.summary,
        "plugin": plugin,
        "dataset": data.name,
        "config": to_dict(config),
        "train_defaults": dict(spec.train),
        "data_shape": list(data.data_shape),
        "latent_shape": facts["latent_shape"],
        "parameters": facts["parameters"],
    }
    if as_json:
        return emit_json(out)
    click.echo(f"{spec.name}: {spec.summary}  (plugin {out['plugin']})")
    click.echo(
        f"  dataset       {data.name}  data shape {tuple(out['data_shape'])}"
        f" -> latent shape {tuple(out['latent_shape'])}"
    )
    click.echo(f"  parameters    {out['parameters']:,}")
    click.echo("  config        " + ", ".join(f"{k}={v}" for k, v in out["config"].items()))
    if spec.train:
        click.echo("  training      " + ", ".join(f"{k}={v}" for k, v in spec.train.items()))


@cli.command()
@json_option
def plugins(as_json):
    """Loaded plugins, what each registers, and any that failed."""
    from dataclasses import asdict

    from zoo.core.registry import current

    registry = current()
    registry.check_model_modules()
    infos = [asdict(i) for i in registry.infos.values()]
    if as_json:
        return emit_json(infos)
    rows = [
        [
            i["name"],
            f"{i['distribution']} {i['version']}".strip() or "(in code)",
            ", ".join(i["models"] + i["datasets"] + i["commands"]) or "-",
            ("FAILED: " + i["error"]) if i["error"] else "ok",
        ]
        for i in infos
    ]
    table(rows, ["PLUGIN", "DISTRIBUTION", "REGISTERS", "STATUS"])


@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Look only in this folder.")
@json_option
def datasets(data_dir, as_json):
    """Registered datasets and where each was found (or why not)."""
    from zoo.core.registry import current
    from zoo.data import where as find

    rows = []
    for name, entry in sorted(current().datasets.items()):
        spec = entry.spec
        try:
            where, ok = find(spec, data_dir), True
        except ZooError as exc:
            where, ok = str(exc), False
        rows.append(
            {
                "name": name,
                "data_shape": list(spec.data_shape),
                "summary": spec.summary,
                "plugin": entry.plugin,
                "found": ok,
                "where": where,
            }
        )
    if as_json:
        return emit_json(rows)
    table(
        [
            [r["name"], "x".join(map(str, r["data_shape"])), r["where"] if r["found"] else "MISSING: " + r["where"]]
            for r in rows
        ],
        ["NAME", "SHAPE", "LOCATION"],
    )


def main():
    cli(prog_name="zoo")


@cli.command()
@click.argument("name", required=False)
@click.option("--dataset", help="Train on this dataset instead of the model's default.")
@data_dir_option
@click.option(
    "--data",
    type=click.Path(),
    help="Your own data: a folder of images (subfolders are labels; train/ and test/ the splits), "
    "a .npy or a .npz file; with --dataset, the folder holding that dataset's files.",
)
@click.option("--image-size", metavar="S|HxW", help="Crop each image to this aspect and resize it (with --data).")
@click.option("--channels", type=int, help="1 (greyscale) or 3 (RGB); default: 1 if every image is grey (with --data).")
@click.option(
    "--test-fraction",
    type=float,
    help="Without train/ and test/ folders or x_test: this seeded fraction is the test split (default 0.1).",
)
@click.option("--epochs", type=int, help="Passes over the training split.")
@click.option("--batch-size", type=int, help="Samples per step.")
@click.option("--lr", type=float, help="Peak learning rate (Adam, cosine schedule).")
@click.option("--device", help="auto (default: cuda if available), cpu or cuda.")
@click.option("--seed", type=int, help="Seed for init, shuffling and noise (default 0).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a model or training setting, e.g. --set latent=8 --set grad_clip=1.",
)
@click.option("--subset", type=int, help="Use only the first N samples of each split (smoke tests).")
@click.option(
    "--labels",
    multiple=True,
    metavar="LABEL",
    help="Train on these labels' samples only (repeat for several), e.g. the normal class of anomaly detection.",
)
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the training step.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to write (default runs/NAME).")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue the run in this folder.")
def train(
    name,
    dataset,
    data_dir,
    data,
    image_size,
    channels,
    test_fraction,
    epochs,
    batch_size,
    lr,
    device,
    seed,
    sets,
    subset,
    labels,
    compile_,
    out,
    resume,
):
    """Train model NAME and write a run folder.

    \b
    The folder gets config.json, model.safetensors, state.safetensors (for --resume),
    metrics.jsonl and recon.png, samples.png, latent.png, curves.png.
    Defaults come from the model's training defaults (see `zoo info NAME`).
    Several processes: torchrun --nproc_per_node N -m zoo train NAME ...
    """
    from zoo.core.config import parse_sets
    from zoo.train.loop import train as run_training

    if not name and not resume:
        raise click.UsageError("give a model NAME (see `zoo list`) or --resume RUN")
    request, data_dir = data_options(data, dataset, data_dir, image_size, channels, test_fraction, resume)
    run_dir = run_training(
        name,
        out,
        dataset=dataset,
        data_dir=data_dir,
        data=request,
        sets=parse_sets(sets),
        resume=resume,
        progress=True,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        device=device,
        seed=seed,
        subset=subset,
        compile=compile_,
        labels=list(labels) or None,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from rank 0 only
        click.echo(f"wrote {run_dir}  (next: zoo eval {run_dir}; zoo export {run_dir})")


def data_options(data, dataset, data_dir, image_size, channels, test_fraction, resume):
    """(a DataRequest or None, the data_dir): ``--data`` is the data itself, or with ``--dataset`` the
    folder holding that dataset's files."""
    from zoo.data.by_path import make_request

    shaping = [
        flag
        for flag, value in (("--image-size", image_size), ("--channels", channels), ("--test-fraction", test_fraction))
        if value is not None
    ]
    if resume and (data or shaping):
        raise ZooUsageError("a resumed run keeps its data; leave out --data and its options")
    if data and dataset:
        if shaping:
            raise ZooUsageError(f"{shaping[0]} applies to --data without --dataset; {dataset} prepares its own")
        return None, data
    if not data:
        if shaping:
            raise ZooUsageError(f"{shaping[0]} needs --data PATH")
        return None, data_dir
    if data_dir:
        raise ZooUsageError("give --data PATH or --data-dir, not both")
    return make_request(data, image_size, channels, test_fraction), None


# zoo eval and zoo score: commands of a finished run, defined beside what they run.
cli.add_command(eval_cmd)
cli.add_command(score_cmd)
