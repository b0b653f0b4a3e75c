"""`zoo serve`, added to the CLI through the ``register_commands`` hook.

Only click and the zoo core are imported here: the server libraries load when the command runs,
so `zoo --help` stays fast. Nothing on this path imports torch.
"""

import ipaddress
import os
import sys
from pathlib import Path

import click

import zoo


def _describe(tensors) -> str:
    return ", ".join(f"{t.name} {[-1, *t.shape]}" for t in tensors)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", help="Model name prefix for a run folder or .onnx file (default: the folder's name, "
                             "or the file's zoo.model).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 exposes the server to the network.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="Most rows merged into one onnxruntime call (1: no micro-batching).")
@click.option("--max-delay-ms", default=2.0, show_default=True, type=click.FloatRange(0, 1000),
              help="Longest a queued request waits for others to join its batch.")
@click.option("--max-queue", default=1024, show_default=True, type=click.IntRange(1),
              help="Requests waiting per model; more are refused with 503 and Retry-After.")
@click.option("--max-body-mb", default=64.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Largest request body (MiB); larger ones get 413.")
@click.option("--timeout", "timeout_s", default=30.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Seconds a request may take, body upload included; then 504.")
@click.option("--threads", default=0, type=click.IntRange(0),
              help="onnxruntime intra-op threads per model (0: its default).")
@click.option("--token", envvar="ZOO_SERVE_TOKEN", show_envvar=True,
              help="Require 'Authorization: Bearer TOKEN' on every route but /v2/health/* and the page.")
@click.option("--quiet", is_flag=True, help="No access-log line per request.")
def serve_cmd(paths, name, host, port, max_batch, max_delay_ms, max_queue, max_body_mb, timeout_s, threads,
              token, quiet):
    """Serve exported models over HTTP in the Open Inference Protocol (KServe v2), with Triton's
    binary tensors, micro-batching, /metrics and a page at /.

    PATH is a run folder (runs/vae serves vae-encoder, vae-decoder and vae-generator), an .onnx file
    written by `zoo export`, or a model repository (`zoo export RUN --repository DIR`).

    \b
    zoo serve runs/vae
    curl localhost:8000/v2/models/vae-generator
    """
    _leave_torch_behind()
    from zoo.serve.app import Settings, create_app
    from zoo.serve.models import load_models
    from zoo.serve.run import listen, serve

    if name is not None:
        from zoo.export.repository import check_name

        check_name(name, "--name")
    models = load_models(paths, name, threads)
    token = token or None  # an empty ZOO_SERVE_TOKEN means no token, not an empty one
    settings = Settings(max_batch=max_batch, max_delay_ms=max_delay_ms, max_queue=max_queue,
                        max_body=int(max_body_mb * 2**20), timeout_s=timeout_s, token=token, quiet=quiet)
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    width = max(map(len, models))
    for model in models.values():
        click.echo(f"  {model.name:<{width}}  {_describe([model.input])} -> {_describe(model.outputs)}")
    click.echo(f"serving {len(models)} model{'s' if len(models) != 1 else ''} on http://{shown}:{bound_port}  "
               f"(page at /, metrics at /metrics{', token required' if token else ''}; Ctrl-C stops)")
    if not token and not _is_loopback(bound_host):
        click.echo(f"warning: listening on {bound_host} without --token: anyone who reaches this port can use it",
                   err=True)
    serve(create_app(models, settings), sock, drain_s=timeout_s + 5)


def _leave_torch_behind() -> None:
    """Become `python -m zoo.serve` with the same arguments, when the CLI imported torch.

    `zoo` imports every plugin to find its commands, and the model plugins import torch: about 700
    MB of resident memory and a second of start-up that a server, which only runs onnxruntime, never
    uses. Replacing the process (same PID, so signals still reach the server) sheds it."""
    argv = sys.argv
    if sys.modules.get("torch") is None or len(argv) < 2 or argv[1] != "serve":
        return  # torch not loaded (or blocked), or not run from the command line (tests, notebooks)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "zoo.serve", *argv[2:]])


@zoo.hookimpl
def register_commands(cli):
    cli.add_command(serve_cmd)

