"""Drive the ASGI app in this process, without HTTP or sockets: for tests that throw many requests
at it, and for the benchmark that splits a request's cost into HTTP and the app's own parts."""

import asyncio

from zoo.serve.inference.batcher import IN_FLIGHT


class InProcessServer:
    """The app with its lifespan started, on an event loop of its own."""

    def __init__(self, app):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._startup())

    async def _startup(self):
        self._shutdown = asyncio.Event()
        started = asyncio.Event()
        messages = iter([{"type": "lifespan.startup"}])

        async def receive():
            message = next(messages, None)
            if message is None:
                await self._shutdown.wait()
                return {"type": "lifespan.shutdown"}
            return message

        async def send(message):
            if message["type"] == "lifespan.startup.complete":
                started.set()

        self._lifespan = asyncio.ensure_future(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        )
        await asyncio.wait_for(started.wait(), 30)

    async def _stop(self):
        self._shutdown.set()
        await asyncio.wait_for(self._lifespan, 30)

    def close(self):
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    def request(self, method: str, path: str, body: bytes = b"", headers=(), timeout: float = 20) -> tuple:
        """(status, headers as a dict, body) of one request; TimeoutError past ``timeout`` seconds."""
        return self.loop.run_until_complete(asyncio.wait_for(self.arequest(method, path, body, headers), timeout))

    async def arequest(self, method: str, path: str, body: bytes = b"", headers=()) -> tuple:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": list(headers),
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
        }
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
        pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

        async def receive():
            if pending:
                return pending.pop(0)
            await asyncio.sleep(3600)  # the client stays connected; the app must not wait for more

        sent = []

        async def send(message):
            sent.append(message)

        IN_FLIGHT.count += 1  # as the connection layer counts a request whose head has arrived (Observe counts it out)
        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])
