"""Run the app under uvicorn: listen, serve until SIGTERM or Ctrl-C, drain, and return normally.

One worker: the app runs in this process. On SIGTERM (or SIGINT) uvicorn stops accepting
connections, lets the requests in flight finish, runs the app's shutdown, and then raises the signal
again for whatever handler was installed before it started. That handler is ours (``EarlyStop``),
installed before the models load, so the process ends with status 0 instead of dying of the signal,
whenever it comes: while loading, during the warm-up calls, while serving or while draining. One
that comes before uvicorn has taken the signals over stops the server before it serves anything.

Several workers: this process becomes a supervisor (uvicorn's) of N worker processes that share the
listening socket, each with its own app, batchers and inference threads; the kernel hands each new
connection to one of them. SIGTERM reaches every worker, each drains as above, and the supervisor
returns once they have all exited. A worker that dies is replaced, and the event is logged.
Workers are started fresh (spawned, not forked): onnxruntime's thread pools do not survive a fork.
"""

import functools
import os
import shutil
import signal
import socket
import sys
import tempfile

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from zoo.core.errors import ZooError
from zoo.serve.http.connections import ConnectionLimits

PROTOCOL = "zoo.serve.http.connections:LimitedHttpProtocol"


def listen(host: str, port: int) -> socket.socket:
    """A bound socket, so that a taken port is one clear error (and port 0 picks a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now, before the banner names the address: a client that connects at once waits
        # in the backlog until uvicorn accepts, instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        raise ZooError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def _config(app, limits: ConnectionLimits, drain_s: float, workers: int = 1, factory: bool = False):
    # No proxy-header rewriting: it costs on every request, and the server faces its clients directly.
    config = uvicorn.Config(
        app,
        factory=factory,
        workers=workers,
        http=PROTOCOL,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,
        timeout_graceful_shutdown=drain_s,
        server_header=False,
    )
    config.zoo_limits = limits  # read by LimitedHttpProtocol, in this process or a worker's
    return config


class EarlyStop:
    """SIGTERM and SIGINT until uvicorn takes them over, and after it gives them back: remembered,
    never fatal. Once the server exists, a signal tells it to stop (uvicorn then drains as usual)."""

    def __init__(self):
        self.signalled = False
        self.server = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, sig, frame) -> None:
        self.signalled = True
        if self.server is not None:
            self.server.should_exit = True


def serve(app, sock: socket.socket, limits: ConnectionLimits, drain_s: float, early: EarlyStop) -> None:
    """Serve ``app`` in this process until SIGTERM or SIGINT."""
    server = uvicorn.Server(_config(app, limits, drain_s))
    early.server = server
    if early.signalled:  # stopped while loading or warming up: nothing was served, nothing to drain
        return
    server.run(sockets=[sock])
    if not server.started:
        raise ZooError("the server did not start (see the lines above)")


def serve_workers(
    make_app, workers: int, sock: socket.socket, limits: ConnectionLimits, drain_s: float, early: EarlyStop
) -> None:
    """Serve with ``workers`` processes, each building its app with ``make_app()`` (a picklable
    callable: it travels to each worker) and all counting into one set of metrics."""
    metrics_dir = tempfile.mkdtemp(prefix="zoo-serve-metrics-")
    # prometheus_client reads this when a worker imports it: each worker then writes its counts to
    # files there, and /metrics, in whichever worker answers, adds up every worker's.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        config = _config(functools.partial(_worker_app, make_app, os.getpid()), limits, drain_s, workers, factory=True)
        supervisor = Supervisor(config, sockets=[sock])  # from here its own handlers queue the signals
        if not early.signalled:
            supervisor.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _worker_app(make_app, supervisor: int):
    _die_with_the_supervisor(supervisor)
    return make_app()


def _die_with_the_supervisor(supervisor: int) -> None:
    """Ask Linux to SIGTERM this worker when the supervisor dies: a supervisor killed outright
    (SIGKILL, the OOM killer) would otherwise leave its workers serving the port on their own. If
    it died before this worker got here, the worker is an orphan already: it leaves at once."""
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        pr_set_pdeathsig = 1
        ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != supervisor:
        os._exit(0)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, saying when a worker dies and is replaced (its own log line is at a
    level the server does not show), and retiring a dead worker's live gauges from the metrics."""

    def keep_subprocess_alive(self) -> None:
        before = list(self.processes)
        super().keep_subprocess_alive()
        for old, new in zip(before, self.processes):
            if new is not old:
                _forget_worker(old.pid)
                sys.stderr.write(f"worker {old.pid} died (exit code {old.exitcode}); started worker {new.pid}\n")
                sys.stderr.flush()

    def join_all(self) -> None:
        super().join_all()
        for process in self.processes:
            _forget_worker(process.pid)


def _forget_worker(pid) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
