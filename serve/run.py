"""Run the app under uvicorn: listen, serve until SIGTERM or Ctrl-C, drain, and return normally.

On SIGTERM (or SIGINT) uvicorn stops accepting connections, lets the requests in flight finish,
runs the app's shutdown, and then raises the signal again for whatever handler was installed
before it started. That handler is ours and does nothing, so the process ends with status 0
instead of dying of the re-raised signal.
"""

import signal
import socket

import uvicorn

from zoo.errors import ZooError


def listen(host: str, port: int) -> socket.socket:
    """A bound socket, so that a taken port is one clear error (and port 0 picks a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now, before the banner names the address: a client that connects at once waits
        # in the backlog until uvicorn accepts, instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        raise ZooError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def serve(app, sock: socket.socket, drain_s: float) -> None:
    # No proxy-header rewriting: it costs on every request, and the server faces its clients directly.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", proxy_headers=False,
                            timeout_graceful_shutdown=drain_s, server_header=False)
    server = uvicorn.Server(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)  # what uvicorn re-raises into after its graceful shutdown
    server.run(sockets=[sock])
    if not server.started:
        raise ZooError("the server did not start (see the lines above)")
