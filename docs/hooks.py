"""mkdocs hooks: what the site needs from outside docs/.

- The plugins' commands (export, sample, bench, serve, ...) join the `zoo` click group when it is
  first listed (the ``register_commands`` hook); mkdocs-click reads the group's commands directly,
  so the group is listed once before the pages are read, and the command-line reference is the
  whole `zoo`, not only the core's commands.
- benchmarks/results/ is published under the same path, so that every number on a page links to the
  results file it came from (a Markdown report becomes a page of its own), and a link to a file that
  does not exist fails the strict build.
"""

from pathlib import Path

import click
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def on_config(config):
    from zoo.cli import cli

    cli.list_commands(click.Context(cli))
    return config


def on_files(files, config):
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file():
            uri = path.relative_to(ROOT).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
