"""uvicorn's HTTP protocol (httptools) with a bound on every phase of a connection.

- **Opening.** Past ``max_connections`` a new connection is answered with one 503 and closed at
  once: nothing of it is read or queued, so a flood of connections costs the server next to nothing
  and the ones already open keep being served.
- **Headers.** A connection must send a complete request head within ``timeout`` seconds of opening
  or of its request's first byte. uvicorn closes a keep-alive connection that stays silent between
  requests, but one that trickles a header byte now and then would hold its place for ever.
- **The size of a head.** The request line and headers may take ``max_head`` bytes, counted as they
  arrive, before the parser sees them: past it the client gets a 414 (the request line alone is
  that long) or a 431, with ``Connection: close``, and nothing more is parsed. uvicorn appends the
  URL piece by piece as it arrives, so an unbounded one would cost memory and quadratic time. (A
  head pipelined behind another request in one read is counted from the next read: it may take
  one read more, at most 256 KiB; its refusal waits for the answer before it to go out.)
- **Body.** The app's request timeout bounds reading a body it wants.
- **The rest of a body after an early answer.** An answer sent before the request's body has all
  arrived (a 413 for a declared size, a 503, a 404, a 401, a 408 for a stalled body) carries
  ``Connection: close``. The connection then closes the way nginx's lingering close does: the
  server finishes sending, shuts its side down, and reads and discards what the client still sends
  for at most ``timeout`` seconds and ``LINGER_BYTES`` bytes before it closes. A client that writes
  its whole body before it reads (Python's http.client, and so urllib) then sees the answer; closing
  at once, with its body unread, would reset the connection under it. A client trickling the rest
  of a body cannot hold the connection past that.
- **Writing the answer.** When the answer backs up (the client does not read it), the client has
  ``timeout`` seconds to read it all; past that the connection is dropped, its buffered answers with
  it, and its slot is free again. Until then the answer still counts against the memory budget,
  all of it (the transport keeps the whole bytes object until its last byte is out): the hot path
  hands its hold to the connection (``keep_until_written``, through the scope's extensions), which
  releases it when the transport's buffer has drained below its low-water mark or the connection
  is gone. uvicorn already makes the app's next send wait while the buffer is above its high-water
  mark.
- **Counting the requests in flight.** From uvicorn's ``_start_asgi_task`` (uvicorn 0.45 and
  later), the one place every request's task starts, pipelined ones included; ``check_uvicorn()``
  refuses to start on a uvicorn without it.

The limits travel on the uvicorn ``Config`` (``config.zoo_limits``), which is what each worker
process receives.
"""

from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from zoo.core.errors import ZooError
from zoo.serve.http.hot_path import HOLD_UNTIL_WRITTEN
from zoo.serve.inference.batcher import IN_FLIGHT
from zoo.serve.protocol import error_body

LINGER_BYTES = 64 * 2**20  # the most of an unwanted body read and discarded after an early answer
UVICORN_FLOOR = "0.45"


def check_uvicorn() -> None:
    """Refuse to start on a uvicorn without the hook that counts requests in flight: without it the
    count would only ever go down, and every short call would run on the event loop under load."""
    if not callable(getattr(HttpToolsProtocol, "_start_asgi_task", None)):
        import uvicorn

        raise ZooError(
            f"zoo serve needs uvicorn {UVICORN_FLOOR} or later (this is uvicorn {uvicorn.__version__}): "
            f"pip install 'uvicorn>={UVICORN_FLOOR}'"
        )


def _answer(status: bytes, message: str) -> bytes:
    body = error_body(message)
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 2048
    timeout: float = 30.0  # seconds for the headers, for the rest of a body after an early answer, for the answer
    max_head: int = 64 * 2**10  # bytes of a request line and its headers

    def refusal(self) -> bytes:
        message = f"this server has its limit of {self.max_connections} open connections; retry shortly"
        return _answer(b"503 Service Unavailable\r\nretry-after: 1", message)

    def head_refusal(self, url_alone: bool) -> bytes:
        if url_alone:
            return _answer(
                b"414 URI Too Long",
                f"the request line is over this server's limit of {self.max_head} bytes (--max-header-kb)",
            )
        return _answer(
            b"431 Request Header Fields Too Large",
            f"the request line and headers are over this server's limit of {self.max_head} bytes (--max-header-kb)",
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
        self.head_room = self.limits.max_head  # bytes the head being received may still take; None in a body
        # Whether the request line of the head being received has ended in what was counted of it;
        # None after a request: the next head may have begun in the read that ended that one.
        self.line_ended = False
        self.heads = 0  # request heads parsed on this connection
        self.unwritten = []  # memory holds of answers still in the transport's buffer
        self.refusal = None  # a 414/431 waiting for the answer in progress on this connection to end
        self.extensions = {HOLD_UNTIL_WRITTEN: self.keep_until_written}

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
        self._release_written()
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
        self.scope["extensions"] = self.extensions
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        self.head_room, self.heads = None, self.heads + 1
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            # Until the body has all arrived, an answer closes the connection: uvicorn then says
            # Connection: close, and closes through cycle_transport, which lingers.
            cycle.transport = self.cycle_transport
            self.keep_alive_after_body, cycle.keep_alive = cycle.keep_alive, False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.head_room, self.line_ended = self.limits.max_head, None  # what follows is the next head
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
        if self.refusal is not None:
            return  # a head refused, reading paused: nothing more is parsed
        if self.lingering is not None:
            self.discarded += len(data)
            if self.discarded > LINGER_BYTES:
                self.transport.close()
            return
        room = self.head_room
        if room is None:  # a body: its own limits apply
            return super().data_received(data)
        if not self.line_ended and data.find(b"\n", 0, room) != -1:  # only what fits counts
            self.line_ended = True
        if len(data) <= room:
            self.head_room = room - len(data)
            return super().data_received(data)
        self._head_past_its_room(data, room)

    # The size of a head

    def _head_past_its_room(self, data: bytes, room: int) -> None:
        """Parse what fits; if the head ended within it, the rest is a body or the next request,
        counted on its own; if not, the head is too long, and nothing more of it is parsed."""
        heads = self.heads
        self.head_room = 0
        super().data_received(data[:room])
        if self.transport.is_closing() or self.lingering is not None:
            return
        if self.heads != heads:
            return self.data_received(data[room:])
        self._disarm_header_deadline()
        url_alone = self.line_ended is False or (self.line_ended is None and len(self.url) > self.limits.max_head // 2)
        self.refusal = self.limits.head_refusal(url_alone)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head: the answer to the request before it goes out first, then the refusal.
            self.flow.pause_reading()
            return
        self._send_refusal()

    def _send_refusal(self) -> None:
        refusal, self.refusal = self.refusal, None
        if not self.transport.is_closing():
            self.transport.write(refusal)
            self.linger()

    def on_response_complete(self) -> None:
        if self.refusal is not None:  # the answer before a refused pipelined head has gone out
            self.server_state.total_requests += 1
            return self._send_refusal()
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
        self._release_written()
        if self.write_deadline is not None and (self.cycle is None or self.cycle.response_complete):
            self.write_deadline.cancel()  # the answer has all but left: the deadline was kept
            self.write_deadline = None

    def _answer_not_read(self) -> None:
        self.write_deadline = None
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # the buffered answers go too: nothing more will be read of them

    # Answers in the memory budget until they leave

    def keep_until_written(self, hold, size: int) -> None:
        """Called by the hot path once its answer of ``size`` bytes is handed to the transport. If
        the transport is paused (its buffer above the high-water mark), the answer stays held, all
        of it (the transport keeps the whole bytes object until its last byte is out), until the
        buffer drains (resume_writing) or the connection is gone. Otherwise it is released at once:
        at most the high-water mark is left to write."""
        if not self.flow.write_paused or not self.transport.get_write_buffer_size():
            hold.release()
            return
        hold.keep(min(hold.bytes, size))
        self.unwritten.append(hold)

    def _release_written(self) -> None:
        for hold in self.unwritten:
            hold.release()
        self.unwritten.clear()
