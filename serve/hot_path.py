"""The routes every busy client hits, as plain ASGI in front of Starlette: ``POST
/v2/models/{name}[/versions/{version}]/infer`` and the health probes (``GET /v2/health/live`` and ``/ready``).

Starlette's request objects, routing table and exception middleware cost more per request than
decoding a small tensor does, so these routes skip them. The health probes take the same path as
inference, so the load benchmark's "hello-world" floor measures the very stack an infer request
runs on. Everything else (metadata, the page, /metrics, wrong methods) goes to Starlette.
"""

import asyncio
import ctypes
import ctypes.util
import sys

import orjson

from zoo.errors import first_line
from zoo.serve import protocol
from zoo.serve.batcher import InferenceError, QueueFull

INFER_PREFIX, INFER_SUFFIX = "/v2/models/", "/infer"
VERSIONS = "/versions/"  # the protocol's optional version segment: /v2/models/{name}/versions/{version}/infer
# Ready as soon as it listens: every model is loaded before the server opens its port.
HEALTH = {"/v2/health/live": orjson.dumps({"live": True}), "/v2/health/ready": orjson.dumps({"ready": True})}
JSON_HEADERS = [(b"content-type", b"application/json")]


# After a request and answer this large, hand the free memory of glibc's heaps back to the system: freed but
# kept, a burst of large requests would leave the server tens of MB larger for good. It takes about
# a millisecond, next to the tens that such a request costs.
TRIM_AFTER_BYTES = 1 << 20
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None


def release_memory() -> None:
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is nobody to answer."""


async def send_response(send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def send_error(send, status: int, message: str, headers=()) -> None:
    # Every error is {"error": ...}, as the protocol asks.
    await send_response(send, status, orjson.dumps({"error": message}), [*JSON_HEADERS, *headers])


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


async def read_body(receive, declared, limit: int) -> bytes:
    """The whole body; ``declared``: its Content-Length header, if any."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()  # refused before reading a byte of it
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # chunked bodies declare no length
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HotPath:
    def __init__(self, app, models: dict, batchers: dict, settings):
        self.app = app  # Starlette, for every other route
        self.models = models
        self.batchers = batchers
        self.settings = settings
        # The most body each model reads: a request of its max batch needs no more.
        self.body_limits = {name: min(settings.max_body, protocol.body_bound(model)) for name, model in models.items()}
        self.too_large = {name: _too_large(model, self.body_limits[name], settings.max_body)
                          for name, model in models.items()}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path.startswith(INFER_PREFIX) and path.endswith(INFER_SUFFIX) and path.count("/") in (4, 6):
                if method != "POST":
                    return await send_error(send, 405, f"{path} takes POST", [(b"allow", b"POST")])
                name, versioned, version = path[len(INFER_PREFIX):-len(INFER_SUFFIX)].partition(VERSIONS)
                return await self.infer(name, version if versioned else None, scope, receive, send)
            if path in HEALTH:
                if method != "GET":
                    return await send_error(send, 405, f"{path} takes GET", [(b"allow", b"GET")])
                return await send_response(send, 200, HEALTH[path], JSON_HEADERS)
        await self.app(scope, receive, send)

    async def infer(self, name: str, version, scope, receive, send):
        """``version``: the one the URL names, or None for the served one."""
        model = self.models.get(name)  # looked up among the loaded models only: never a file path
        if model is None:
            return await send_error(send, 404, f"unknown model {name!r}; this server has {', '.join(self.models)}")
        if version is not None and version != model.version:
            return await send_error(send, 404, unknown_version(model, version))
        batcher, settings = self.batchers[name], self.settings
        busy = f"{name} is busy: its queue is full; retry shortly"
        if batcher.full:  # refused before reading the body: a 503 must come at once
            return await send_error(send, 503, busy, [(b"retry-after", b"1")])
        declared, header_length = infer_headers(scope)
        try:
            async with asyncio.timeout(settings.timeout_s):
                body = await read_body(receive, declared, self.body_limits[name])
                request = protocol.parse_infer(body, header_length, model, settings.max_response)
                outputs = await batcher.infer(request.batch)
        except ClientGone:
            return
        except protocol.ProtocolError as exc:
            return await send_error(send, 400, str(exc))
        except BodyTooLarge:
            return await send_error(send, 413, self.too_large[name])
        except QueueFull:
            return await send_error(send, 503, busy, [(b"retry-after", b"1")])
        except TimeoutError:
            return await send_error(send, 504, f"no answer within the request timeout of {settings.timeout_s:g} s")
        except InferenceError as exc:  # the server's fault, not the client's: the log says what failed
            log_fault(name, str(exc))
            return await send_error(send, 500, str(exc))
        except Exception as exc:  # a bug of ours: one line in the log, a 500 for the client, no traceback
            log_fault(name, f"{type(exc).__name__}: {first_line(exc)}")
            return await send_error(send, 500, f"internal error while serving {name}")
        body, headers = protocol.encode_response(model, request, outputs)
        await send_response(send, 200, body, headers)
        if request.batch.nbytes + len(body) > TRIM_AFTER_BYTES:
            release_memory()


def unknown_version(model, version: str) -> str:
    return f"unknown version {version!r} of model {model.name!r}; this server has version {model.version}"


def _too_large(model, limit: int, max_body: int) -> str:
    if limit < max_body:  # the model's max batch is what binds
        return (f"the request body is over {limit} bytes, more than {model.max_batch} rows (the max batch of "
                f"{model.name}) can need: send fewer rows per request")
    return f"the request body is over the server's limit of {limit} bytes (--max-body-mb)"


def log_fault(model: str, what: str) -> None:
    sys.stderr.write(f"error: {model}: {what}\n")
