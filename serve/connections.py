"""uvicorn's HTTP protocol (httptools) with the two limits it lacks: how many connections may be
open at once, and how long a request's headers may take to arrive.

- Past ``max_connections`` a new connection is answered with one 503 and closed at once: nothing
  of it is read or queued, so a flood of connections costs the server next to nothing and the ones
  already open keep being served.
- A connection must send a complete request head within ``header_timeout`` seconds of opening or
  of its request's first byte. uvicorn closes a keep-alive connection that stays silent between
  requests, but one that trickles a header byte now and then (or connects and sends nothing) would
  hold its place for ever: with a connection limit, a few hundred such clients would lock everyone
  else out. A request's body is bounded by the app's own request timeout.

The limits travel on the uvicorn ``Config`` (``config.zoo_limits``), which is what each worker
process receives.
"""

from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_in_flight = None  # the server's set of requests in flight (uvicorn's task per request), once known


def watch_requests(tasks: set) -> None:
    """Make ``tasks`` the set that requests_in_flight() counts (one server per process)."""
    global _in_flight
    _in_flight = tasks


def requests_in_flight() -> int:
    """Requests this process has received and not yet answered, those not yet started included:
    uvicorn makes a task for each request it parses, before the app sees it."""
    return len(_in_flight) if _in_flight is not None else 0


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 2048
    header_timeout: float = 30.0

    def refusal(self) -> bytes:
        body = (b'{"error": "this server has its limit of %d open connections; retry shortly"}'
                % self.max_connections)
        return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, config, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.limits = getattr(config, "zoo_limits", None) or ConnectionLimits()
        self.header_deadline = None
        watch_requests(self.tasks)  # the server's own set, the same for every connection

    def connection_made(self, transport) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport  # never counted, never parsed: answered and closed
            transport.write(self.limits.refusal())
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc) -> None:
        self._disarm_header_deadline()
        if self.parser is None or self not in self.connections:
            # Refused at once (or lost twice): the base class would tidy up state it never made.
            self.connections.discard(self)
            return
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def _arm_header_deadline(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
