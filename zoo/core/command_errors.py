"""Errors at the command line: a ZooError is one line on stderr and a non-zero exit, and anything
else that escapes a command is one line saying what failed. Shared by the ``zoo`` group and the
commands that also run on their own (``python -m zoo.serve``), so the server needs nothing above
the core for it."""

import contextlib
import os
import sys

import click

from zoo.core.errors import ZooError, first_line


@contextlib.contextmanager
def one_line_errors(command_name):
    """A ZooError becomes its message on one line and a non-zero exit. Any other exception that
    escapes a command is a bug: one line saying what failed (``ZOO_DEBUG=1`` shows the traceback)."""
    try:
        yield
    except ZooError as exc:
        fail(exc)
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except Exception as exc:  # the last resort
        if os.environ.get("ZOO_DEBUG", "") not in ("", "0"):
            raise
        fail(
            ZooError(
                f"{command_name()} failed unexpectedly ({type(exc).__name__}: {first_line(exc)}); "
                "rerun with ZOO_DEBUG=1 to see the traceback, and please report it"
            )
        )


def run_command(command: click.Command, prog_name: str) -> None:
    """Run one command on its own (``python -m zoo.serve``), with the CLI's error handling."""
    with one_line_errors(lambda: prog_name):
        command.main(prog_name=prog_name)


def fail(exc: ZooError):
    click.echo(f"Error: {exc}", err=True)
    sys.exit(exc.exit_code)
