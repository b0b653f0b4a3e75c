"""`python -m zoo.serve PATH...`: the server on its own, without discovering plugins: the same as
`zoo serve PATH...`, for an environment that has the server's libraries but not the plugins."""

from zoo.core.command_errors import run_command
from zoo.serve.commands import serve_cmd

if __name__ == "__main__":  # not when a worker process, spawned from this one, imports it again
    run_command(serve_cmd, prog_name="zoo serve")
