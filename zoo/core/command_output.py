"""How commands print what they found: JSON for programs (``--json``), aligned columns for people."""

import json

import click


def emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2))


def table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
