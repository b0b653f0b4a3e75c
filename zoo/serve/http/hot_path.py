"""The routes every busy client hits, as plain ASGI in front of Starlette: ``POST
/v2/models/{name}[/versions/{version}]/infer`` and the health probes (``GET /v2/health/live`` and ``/ready``).

Starlette's request objects, routing table and exception middleware cost more per request than
decoding a small tensor does, so these routes skip them. The health probes take the same path as
inference, so the load benchmark's "hello-world" floor measures the very stack an infer request
runs on. Everything else (metadata, the page, /metrics, wrong methods) goes to Starlette.

An infer request, in order: the model and version (404), the declared body size (413), a place in
the model's queue (503), its share of the memory budget (503, or 413 if it could never fit), then
within ``--timeout`` the body (408 past it), its parsing (400) and the model's call (504 past it). Its
place is held until its answer has been sent, and its memory until the answer has been written to
the client (the connection layer releases it as the transport's buffer drains). Whatever happens, the client gets
``{"error": ...}`` with a 4xx, or the answer; a fault of the server's own is a 500 with one log line.
"""

import asyncio
import sys
import time

import orjson

from zoo.core.errors import first_line
from zoo.serve import protocol
from zoo.serve.inference.batcher import InferenceError
from zoo.serve.inference.memory import TRIM_AFTER_BYTES, MemoryBudget, OverBudget, release_memory

INFER_PREFIX, INFER_SUFFIX = "/v2/models/", "/infer"
VERSIONS = "/versions/"  # the protocol's optional version segment: /v2/models/{name}/versions/{version}/infer
# Ready as soon as it listens: every model is loaded before the server opens its port.
HEALTH = {"/v2/health/live": orjson.dumps({"live": True}), "/v2/health/ready": orjson.dumps({"ready": True})}
JSON_HEADERS = [(b"content-type", b"application/json")]

RETRY = [(b"retry-after", b"1")]
HOLD_UNTIL_WRITTEN = "zoo.keep_until_written"  # the connection's hand-over of an answer's memory hold


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is nobody to answer."""


async def send_response(send, status: int, body: bytes, headers: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send, status: int, message: str, headers=()) -> None:
    await send_response(send, status, protocol.error_body(message), [*JSON_HEADERS, *headers])


def find_model(models: dict, name: str, version) -> tuple:
    """(the model, None), or (None, why not) when no loaded model has that name or, with ``version``
    (None: the served one), that version. Only the loaded models are looked at: a name in a URL
    never reaches the file system."""
    model = models.get(name)
    if model is None:
        return None, f"unknown model {name!r}; this server has {', '.join(models)}"
    if version is not None and version != model.version:
        return None, f"unknown version {version!r} of model {name!r}; this server has version {model.version}"
    return model, None


def infer_headers(scope) -> tuple:
    """(Content-Length, Inference-Header-Content-Length), each None when absent: one pass over the
    headers, which costs less than a search for each."""
    declared = header_length = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value
        elif key == protocol.HEADER_LENGTH_BYTES:
            header_length = value.decode("latin-1")
    return declared, header_length


def declared_size(declared) -> int | None:
    """The Content-Length header's value, or None (chunked, or not a number: httptools refuses those)."""
    return int(declared) if declared is not None and declared.isdigit() else None


async def read_body(receive, size: int | None, limit: int, hold) -> bytes:
    """The whole body. ``size``: its declared length, already within ``limit`` and taken from the
    memory ``hold``; what arrives beyond it (a chunked body declares none) is counted against both
    as it arrives."""
    chunks, received, held = [], 0, size or 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge()
        if received > held:
            hold.take(received - held)
            held = received
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HotPath:
    def __init__(self, app, models: dict, batchers: dict, settings):
        self.app = app  # Starlette, for every other route
        self.models = models
        self.batchers = batchers
        self.settings = settings
        self.memory = MemoryBudget(settings.max_memory)
        # The most body each model reads: a request of its max batch needs no more.
        self.body_limits = {name: min(settings.max_body, protocol.body_bound(model)) for name, model in models.items()}
        self.too_large = {
            name: _too_large(model, self.body_limits[name], settings.max_body) for name, model in models.items()
        }

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path.startswith(INFER_PREFIX) and path.endswith(INFER_SUFFIX) and path.count("/") in (4, 6):
                if method != "POST":
                    return await send_error(send, 405, f"{path} takes POST", [(b"allow", b"POST")])
                name, versioned, version = path[len(INFER_PREFIX) : -len(INFER_SUFFIX)].partition(VERSIONS)
                return await self.infer(name, version if versioned else None, scope, receive, send)
            if path in HEALTH:
                if method != "GET":
                    return await send_error(send, 405, f"{path} takes GET", [(b"allow", b"GET")])
                return await send_response(send, 200, HEALTH[path], JSON_HEADERS)
        await self.app(scope, receive, send)

    async def infer(self, name: str, version, scope, receive, send):
        """``version``: the one the URL names, or None for the served one. The refusals before the
        body is read are answered at once (the connection layer then closes the connection)."""
        model, missing = find_model(self.models, name, version)
        if model is None:
            return await send_error(send, 404, missing)
        declared, header_length = infer_headers(scope)
        size = declared_size(declared)
        if size is not None and size > self.body_limits[name]:
            return await send_error(send, 413, self.too_large[name])  # refused before reading a byte of it
        batcher = self.batchers[name]
        if not batcher.admit():
            return await send_error(send, 503, f"{name} is busy: its queue is full; retry shortly", RETRY)
        hold, sent = self.memory.hold(), False
        try:
            status, answer, headers, request = await self._answer(model, batcher, receive, size, header_length, hold)
            if status is None:  # the client left before its body arrived: nobody to answer
                return
            await send_response(send, status, answer, headers)
            sent = True
        finally:
            keep_until_written = scope.get("extensions", {}).get(HOLD_UNTIL_WRITTEN) if sent else None
            if keep_until_written is None:
                hold.release()
            else:  # what the client has not read yet stays held (connections.py)
                keep_until_written(hold, len(answer))
            batcher.leave()
        if request is not None and request.batch.nbytes + len(answer) > TRIM_AFTER_BYTES:
            release_memory()

    async def _answer(self, model, batcher, receive, size, header_length, hold) -> tuple:
        """(status, body, headers, the parsed request or None) for an admitted request. Everything
        that can go wrong is caught here, encoding the answer included, so that no input reaches the
        client as anything but a 4xx or its answer."""
        settings, name, request, body = self.settings, model.name, None, None
        deadline = time.perf_counter() + settings.timeout_s
        try:
            hold.take(size or 0)
            async with asyncio.timeout(settings.timeout_s):
                body = await read_body(receive, size, self.body_limits[name], hold)
                hold.take(protocol.parse_cost(body, header_length))
                request = protocol.parse_infer(body, header_length, model, settings.max_response)
                hold.take(request.answer_bytes)
                outputs = await batcher.infer(request.batch, deadline)
            return (200, *protocol.encode_response(model, request, outputs), request)
        except ClientGone:
            return None, b"", [], None
        except OverBudget as exc:
            return _error(413, exc.message(), request) if exc.never else _error(503, exc.message(), request, RETRY)
        except protocol.ProtocolError as exc:
            return _error(400, str(exc), request)
        except BodyTooLarge:
            return _error(413, self.too_large[name], request)
        except TimeoutError:
            if body is None:  # the client's own slowness: HTTP's answer is 408, not a server error
                return _error(
                    408, f"the request body did not arrive within the timeout of {settings.timeout_s:g} s", None
                )
            return _error(504, f"no answer within the request timeout of {settings.timeout_s:g} s", request)
        except InferenceError as exc:  # the server's fault, not the client's: the log says what failed
            log_fault(name, str(exc))
            return _error(500, str(exc), request)
        except Exception as exc:  # a bug of ours: one line in the log, a 500 for the client, no traceback
            log_fault(name, f"{type(exc).__name__}: {first_line(exc)}")
            return _error(500, f"internal error while serving {name}", request)


def _error(status: int, message: str, request, headers=()) -> tuple:
    return status, protocol.error_body(message), [*JSON_HEADERS, *headers], request


def _too_large(model, limit: int, max_body: int) -> str:
    if limit < max_body:  # the model's max batch is what binds
        return (
            f"the request body is over {limit} bytes, more than {model.max_batch} rows (the max batch of "
            f"{model.name}) can need: send fewer rows per request"
        )
    return f"the request body is over the server's limit of {limit} bytes (--max-body-mb)"


def log_fault(model: str, what: str) -> None:
    sys.stderr.write(f"error: {model}: {what}\n")
