"""Options several commands share, written once so that their flag and help read the same in each."""

import click

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder with the dataset's IDX files (or its NAME/ subfolder); the only place looked.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
cpu_device_option = click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
