"""uvicorn's HTTP protocol (httptools) with a bound on every phase of a connection.

- **Opening.** Past ``max_connections`` a new connection is answered with one 503 and closed at
  once: nothing of it is read or queued, so a flood of connections costs the server next to nothing
  and the ones already open keep being served.
- **Headers.** A connection must send a complete request head within ``timeout`` seconds of opening
  or of its request's first byte. uvicorn closes a keep-alive connection that stays silent between
  requests, but one that trickles a header byte now and then would hold its place for ever.
- **Body.** The app's request timeout bounds reading a body it wants.
- **The rest of a body after an early answer.** An answer sent before the request's body has all
  arrived (a 413 for a declared size, a 503, a 404, a 401, a 504 for a stalled body) carries
  ``Connection: close``. The connection then closes the way nginx's lingering close does: the
  server finishes sending, shuts its side down, and reads and discards what the client still sends
  for at most ``timeout`` seconds and ``LINGER_BYTES`` bytes before it closes. A client that writes
  its whole body before it reads (Python's http.client, and so urllib) then sees the answer; closing
  at once, with its body unread, would reset the connection under it. A client trickling the rest
  of a body cannot hold the connection past that.
- **Writing the answer.** When the answer backs up (the client does not read it), the client has
  ``timeout`` seconds to read it all; past that the connection is dropped, its buffered answers with
  it, and its slot is free again.

The limits travel on the uvicorn ``Config`` (``config.zoo_limits``), which is what each worker
process receives.
"""

from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from zoo.serve.inference.batcher import IN_FLIGHT
from zoo.serve.protocol import error_body

LINGER_BYTES = 64 * 2**20  # the most of an unwanted body read and discarded after an early answer


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 2048
    timeout: float = 30.0  # seconds for the headers, for the rest of a body after an early answer, for the answer

    def refusal(self) -> bytes:
        body = error_body(f"this server has its limit of {self.max_connections} open connections; retry shortly")
        return (
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )


class _CycleTransport:
    """What each request's cycle sees as its transport: the connection's own ``write`` and
    ``is_closing`` (bound once: nothing in between on the hot path), and a ``close`` that lingers
    when the answer went out before the request's body had all arrived."""

    def __init__(self, protocol, transport):
        self.write = transport.write
        self.is_closing = transport.is_closing
        self._protocol = protocol
        self._transport = transport

    def close(self) -> None:
        cycle = self._protocol.cycle
        if cycle is not None and cycle.more_body:
            self._protocol.linger()
        else:
            self._transport.close()


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, config, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.limits = getattr(config, "zoo_limits", None) or ConnectionLimits()
        self.header_deadline = None
        self.write_deadline = None
        self.lingering = None  # once closing: the timer that ends the lingering close
        self.discarded = 0
        self.cycle_transport = None
        self.keep_alive_after_body = True  # the request's own keep-alive, given back once its body is in
        self.shutting_down = False

    def connection_made(self, transport) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport  # never counted, never parsed: answered and closed
            transport.write(self.limits.refusal())
            transport.close()
            return
        super().connection_made(transport)
        self.cycle_transport = _CycleTransport(self, transport)
        self._arm_header_deadline()

    def connection_lost(self, exc) -> None:
        self._disarm_header_deadline()
        for timer in (self.write_deadline, self.lingering):
            if timer is not None:
                timer.cancel()
        if self.parser is None or self not in self.connections:
            # Refused at once (or lost twice): the base class would tidy up state it never made.
            self.connections.discard(self)
            return
        super().connection_lost(exc)

    # Headers

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            # Until the body has all arrived, an answer closes the connection: uvicorn then says
            # Connection: close, and closes through cycle_transport, which lingers.
            cycle.transport = self.cycle_transport
            self.keep_alive_after_body, cycle.keep_alive = cycle.keep_alive, False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not self.shutting_down:
            cycle.keep_alive = self.keep_alive_after_body

    def shutdown(self) -> None:
        self.shutting_down = True
        super().shutdown()

    def _arm_header_deadline(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.limits.timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    # Counting the requests in flight

    def _start_asgi_task(self, cycle, app) -> None:
        """Count the request from now, before the app starts on it (the batchers read the count;
        middleware.Observe, the app's outermost layer, counts it out)."""
        IN_FLIGHT.count += 1
        super()._start_asgi_task(cycle, app)

    # The rest of a body after an early answer

    def linger(self) -> None:
        """The answer is written: send it, shut our side, and discard what the client still sends."""
        if self.lingering is not None or self.transport.is_closing():
            return
        self.lingering = self.loop.call_later(self.limits.timeout, self._stop_lingering)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # after what is buffered: the client reads its answer, then the end
        self.flow.resume_reading()

    def _stop_lingering(self) -> None:
        self.lingering = None
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.lingering is None:
            return super().data_received(data)
        self.discarded += len(data)
        if self.discarded > LINGER_BYTES:
            self.transport.close()

    def on_response_complete(self) -> None:
        if self.lingering is not None:  # no next request on this connection, and no keep-alive timer
            self.server_state.total_requests += 1
            return
        super().on_response_complete()
        if self.transport.get_write_buffer_size() and self.write_deadline is None:
            # Answered, but not all of it has left: the client has the timeout to take the rest.
            self.write_deadline = self.loop.call_later(self.limits.timeout, self._answer_not_read)

    # Writing the answer

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.write_deadline is None:
            self.write_deadline = self.loop.call_later(self.limits.timeout, self._answer_not_read)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.write_deadline is not None and (self.cycle is None or self.cycle.response_complete):
            self.write_deadline.cancel()  # the answer has all but left: the deadline was kept
            self.write_deadline = None

    def _answer_not_read(self) -> None:
        self.write_deadline = None
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # the buffered answers go too: nothing more will be read of them
