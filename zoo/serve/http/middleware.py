"""Two plain ASGI layers around every route: the bearer token, and the access log with metrics.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: they run on every request, and a layer that
only looks at the scope and the response status costs next to nothing.
"""

import hmac
import os
import sys
import time

from zoo.serve.inference.batcher import IN_FLIGHT
from zoo.serve.protocol import error_body

OPEN_PATHS = ("/", "/favicon.ico")  # the page's HTML asks for the token itself; health probes carry none
OPEN_PREFIX = "/v2/health/"


class RequireToken:
    """401 unless ``Authorization: Bearer <token>``, compared in constant time."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIX):
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if hmac.compare_digest(given, self.expected):
            return await self.app(scope, receive, send)
        body = error_body("this server needs a token: send the header Authorization: Bearer <token>")
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def model_label(path: str, model_names) -> str:
    """The loaded model a path names, or "" (see metrics.py: never a name a client made up)."""
    if path.startswith("/v2/models/"):
        name = path[len("/v2/models/") :].split("/", 1)[0]
        if name in model_names:
            return name
    return ""


class Observe:
    """One access-log line per request (unless quiet) and the request metrics."""

    def __init__(self, app, metrics, model_names, quiet: bool, name_worker: bool = False):
        self.app = app
        self.metrics = metrics
        self.model_names = frozenset(model_names)
        self.quiet = quiet
        # Workers share one stderr: the pid says whose line it is (the supervisor names pids too).
        self.prefix = f"worker {os.getpid()} " if name_worker else ""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before it answers

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            IN_FLIGHT.count -= 1  # counted in when its head arrived (connections.py, inprocess.py)
            seconds = time.perf_counter() - started
            self.metrics.observe_request(model_label(scope["path"], self.model_names), status, seconds)
            if not self.quiet:
                client = scope.get("client") or ("-", 0)
                # raw_path: still percent-encoded, so a request cannot write a line break into the log
                path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
                sys.stderr.write(
                    f'{self.prefix}{client[0]}:{client[1]} "{scope["method"]} {path} '
                    f'HTTP/{scope["http_version"]}" {status} {seconds * 1000:.1f} ms\n'
                )
