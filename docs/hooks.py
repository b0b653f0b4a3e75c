"""mkdocs hooks: what the site needs from outside docs/.

- The plugins' commands (export, sample, bench, serve, ...) join the `zoo` click group when it is
  first listed (the ``register_commands`` hook); mkdocs-click reads the group's commands directly,
  so the group is listed once before the pages are read, and the command-line reference is the
  whole `zoo`, not only the core's commands.
- The Python API reference reads the package as it installs: plugins/, export/ and serve/ become
  zoo.plugins, zoo.export and zoo.serve (setuptools' package-dir mapping, which reading the source
  tree cannot follow), so the references are collected from build/docs-api/, a folder of links in
  that layout (mkdocs.yml points the handler there).
- benchmarks/results/ is published under the same path, so that every number on a page links to the
  results file it came from (a Markdown report becomes a page of its own), and a link to a file that
  does not exist fails the strict build.
"""

import contextlib
from pathlib import Path

import click
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


MAPPED = {"plugins": "plugins", "export": "export", "serve": "serve"}  # zoo.<key> lives in <value>/


def on_config(config):
    from zoo.cli import cli

    cli.list_commands(click.Context(cli))
    return config


def on_startup(command, dirty):
    installed_layout(ROOT / "build" / "docs-api")


def installed_layout(top: Path) -> Path:
    """``top/zoo/`` as the package installs: links to zoo/'s own files, and to the mapped folders.
    Made afresh on every build, so that a file added to zoo/ is seen."""
    package = top / "zoo"
    package.mkdir(parents=True, exist_ok=True)
    wanted = {entry.name: entry for entry in (ROOT / "zoo").iterdir()}
    wanted.update({name: ROOT / folder for name, folder in MAPPED.items()})
    for link in package.iterdir():
        if link.name not in wanted or link.resolve() != wanted[link.name].resolve():
            link.unlink(missing_ok=True)
    for name, target in wanted.items():
        if not (package / name).is_symlink():
            with contextlib.suppress(FileExistsError):  # another build made it meanwhile
                (package / name).symlink_to(target)
    return top


def on_files(files, config):
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file():
            uri = path.relative_to(ROOT).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
