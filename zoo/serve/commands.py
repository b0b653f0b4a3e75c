"""`zoo serve`, added to the CLI through the ``register_commands`` hook.

Only click and the zoo core are imported here: the server libraries load when the command runs,
so `zoo --help` stays fast. Nothing on this path imports torch.
"""

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import click

import zoo
from zoo.export import serving_settings
from zoo.serve.inference.memory import DEFAULT_MB as DEFAULT_MEMORY_MB


def _describe(tensors) -> str:
    return ", ".join(f"{t.name} {[-1, *t.shape]}" for t in tensors)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class ServePlan:
    """What every worker needs to build the same app: picklable, so it travels to worker processes."""

    paths: tuple
    name: str | None
    flags: dict  # the serving settings given on the command line
    settings: object  # zoo.serve.http.app.Settings

    def load(self) -> dict:
        from zoo.serve.inference.models import load_models

        return load_models(self.paths, self.name, self.flags)

    def __call__(self):
        from zoo.serve.http.app import create_app

        return create_app(self.load(), self.settings)


@click.command("serve")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--name",
    help="Model name prefix for a run folder or .onnx file (default: the folder's name, or the file's zoo.model).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 exposes the server to the network.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Server processes sharing the port, each with its own batchers and inference threads "
    "(about one per core); /metrics counts across all of them.",
)
@serving_settings.options(lambda setting: f"Overrides {setting.field} in a repository's config.pbtxt.")
@click.option(
    "--max-queue",
    default=1024,
    show_default=True,
    type=click.IntRange(1),
    help="Requests waiting per model; more are refused with 503 and Retry-After.",
)
@click.option(
    "--max-body-mb",
    default=64.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Largest request body (MiB); larger ones get 413.",
)
@click.option(
    "--max-response-mb",
    default=64.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Largest answer (MiB); a request whose answer could be larger gets 400 before it runs.",
)
@click.option(
    "--max-connections",
    default=2048,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections per worker; past it a new connection gets 503 and is closed at once.",
)
@click.option(
    "--max-header-kb",
    default=64.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Largest request line and headers together (KiB); past it a request gets 431 (414 for the "
    "request line alone) and its connection is closed.",
)
@click.option(
    "--max-memory-mb",
    default=DEFAULT_MEMORY_MB,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Memory per worker that the requests in flight may hold at once (bodies as they arrive, "
    "their parsing, their answers); past it a request gets 503 at once.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds for each phase of a connection: a request's headers to arrive (then the connection "
    "is closed), the body's upload (then 408), the request itself (then 504), the rest of a body after "
    "an early answer, and the client reading its answer (then the connection is dropped).",
)
@click.option(
    "--token",
    envvar="ZOO_SERVE_TOKEN",
    show_envvar=True,
    help="Require 'Authorization: Bearer TOKEN' on every route but /v2/health/* and the page.",
)
@click.option("--quiet", is_flag=True, help="No access-log line per request.")
def serve_cmd(
    paths,
    name,
    host,
    port,
    workers,
    serving,
    max_queue,
    max_body_mb,
    max_response_mb,
    max_connections,
    max_header_kb,
    max_memory_mb,
    timeout_s,
    token,
    quiet,
):
    """Serve exported models over HTTP in the Open Inference Protocol (KServe v2), with Triton's
    binary tensors, micro-batching, /metrics and a page at /.

    PATH is a run folder (runs/vae serves vae-encoder, vae-decoder and vae-generator), an .onnx file
    written by `zoo export`, or a model repository (`zoo export RUN --repository DIR`), whose
    config.pbtxt files set each model's max batch, queue delay, instances and threads; the flags
    below override them, and the banner says where each value came from.

    \b
    zoo serve runs/vae
    curl localhost:8000/v2/models/vae-generator
    """
    from zoo.serve.http.app import Settings
    from zoo.serve.http.connections import ConnectionLimits, check_uvicorn
    from zoo.serve.http.run import EarlyStop, listen, serve, serve_workers
    from zoo.serve.inference.models import describe_serving

    check_uvicorn()
    early = EarlyStop()  # a SIGTERM from here on, warm-up included, ends the process cleanly
    if name is not None:
        from zoo.export.repository import check_name

        check_name(name, "--name")
    token = token or None  # an empty ZOO_SERVE_TOKEN means no token, not an empty one
    settings = Settings(
        max_queue=max_queue,
        max_body=int(max_body_mb * 2**20),
        max_response=int(max_response_mb * 2**20),
        max_memory=int(max_memory_mb * 2**20),
        timeout_s=timeout_s,
        token=token,
        quiet=quiet,
        name_worker=workers > 1,
    )
    plan = ServePlan(tuple(paths), name, serving, settings)
    models = plan.load()  # every model and config is checked here, before anything listens
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    width = max(map(len, models))
    for model in models.values():
        click.echo(f"  {model.name:<{width}}  {_describe([model.input])} -> {_describe(model.outputs)}")
        click.echo(f"  {'':<{width}}  {describe_serving(model.serving, model.sources)}")
    processes = f", {workers} workers" if workers > 1 else ""
    click.echo(
        f"serving {len(models)} model{'s' if len(models) != 1 else ''} on http://{shown}:{bound_port}  "
        f"(page at /, metrics at /metrics{', token required' if token else ''}{processes}; Ctrl-C stops)"
    )
    if not token and not _is_loopback(bound_host):
        click.echo(
            f"warning: listening on {bound_host} without --token: anyone who reaches this port can use it", err=True
        )
    limits = ConnectionLimits(max_connections=max_connections, timeout=timeout_s, max_head=int(max_header_kb * 2**10))
    if workers == 1:
        from zoo.serve.http.app import create_app

        serve(create_app(models, settings), sock, limits, drain_s=timeout_s + 5, early=early)
    else:
        del models  # each worker loads its own
        serve_workers(plan, workers, sock, limits, drain_s=timeout_s + 5, early=early)


@zoo.hookimpl
def register_commands(cli):
    cli.add_command(serve_cmd)
