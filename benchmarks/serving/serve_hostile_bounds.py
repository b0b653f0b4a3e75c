"""The attempts on `zoo serve`'s bounds (used by serve_hostile_holes; each returns one JSON-able
record):

- one connection sending `GET /` and then up to 100 MB of URL, or of one header, 64 KiB at a time
  (--timeout 5), while another client checks health every 10 ms: the answer, how long it took,
  the health checks' latency and the server's RSS;
- 200 clients, 30 ms apart, each asking vae-decoder for 1,024 rows (an 8 MB JSON answer) and never
  reading it (--max-memory-mb 128 --timeout 20): the server's RSS, and what a new request gets.

And the two pieces of the wire every attempt shares: a JSON inference body, and reading an answer's head.
"""

import itertools
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np


def infer_body(name: str, rows: np.ndarray, **extra) -> bytes:
    return json.dumps(
        {
            "inputs": [{"name": name, "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}],
            **extra,
        }
    ).encode()


def read_head(sock) -> bytes:
    """What the server has sent up to the end of its head (or until it closed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class HealthProbe(threading.Thread):
    """A client checking /v2/health/live every 10 ms on a keep-alive connection: its latencies."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.latencies, self.done = server, [], threading.Event()

    def run(self) -> None:
        with socket.create_connection((self.server.host, self.server.port), timeout=30) as sock:
            while not self.done.is_set():
                started = time.perf_counter()
                sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                read_head(sock)
                self.latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.01)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        ordered = sorted(self.latencies)
        return {
            "health_checks": len(ordered),
            "health_ms_median": round(ordered[len(ordered) // 2], 2),
            "health_ms_max": round(ordered[-1], 2),
        }


def endlessread_head(server_factory, run: Path, kind: str, megabytes: int) -> dict:
    """``GET /`` then ``megabytes`` of URL (or ``GET / HTTP/1.1``, a header name, then that much of
    its value), 64 KiB at a time, looking for an answer between pieces."""
    server = server_factory(run, "--timeout", 5)
    try:
        probe = HealthProbe(server)
        probe.start()
        time.sleep(0.3)
        before, peak, sent, answer = server.rss_mb(), 0.0, 0, b""
        piece = b"a" * 65536
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /" if kind == "url" else b"GET / HTTP/1.1\r\nX-Long: ")
            sock.setblocking(False)
            for tries in itertools.count():
                if sent >= megabytes * 2**20 or b"\r\n" in answer:
                    break
                try:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break  # closed
                    answer += chunk
                except BlockingIOError:
                    pass
                except OSError:
                    break  # reset
                try:
                    sent += sock.send(piece)
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    break
                if tries % 64 == 0:
                    peak = max(peak, server.rss_mb())
            seconds = time.monotonic() - started
        time.sleep(1)
        first_line = answer.split(b"\r\n")[0].decode("latin-1") or "no answer"
        return {
            "kind": kind,
            "mb_planned": megabytes,
            "first_line": first_line,
            "seconds": round(seconds, 3),
            "mb_sent": round(sent / 2**20, 1),
            **probe.stop(),
            "rss_mb_before": round(before, 1),
            "rss_mb_peak": round(max(peak, before), 1),
            "rss_mb_after": round(server.rss_mb(), 1),
        }
    finally:
        server.stop()


def unread_answers(server_factory, run: Path, clients: int) -> dict:
    """``clients`` connections, 30 ms apart, each asking for a 1024-row JSON answer (about 8 MB) and
    never reading it; then a new request of the same kind, and the RSS once they have all gone."""
    server = server_factory(run, "--max-memory-mb", 128, "--timeout", 20)
    body = infer_body("z", np.zeros((1024, 20), np.float32))
    request = b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    socks, rss = [], [server.rss_mb()]
    try:
        for _ in range(clients):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request)
            socks.append(sock)
            rss.append(server.rss_mb())
            time.sleep(0.03)
        for _ in range(40):  # the answers being computed and sent
            rss.append(server.rss_mb())
            time.sleep(0.05)
        started = time.monotonic()
        late = server.client.post("/v2/models/vae-decoder/infer", content=body)
        late_s = time.monotonic() - started
        statuses = []
        for sock in socks:  # the status line each has received, peeked: nothing is read
            sock.setblocking(False)
            try:
                statuses.append(sock.recv(12, socket.MSG_PEEK)[9:12].decode() or "closed")
            except BlockingIOError:
                statuses.append("none yet")
            except OSError as exc:
                statuses.append(type(exc).__name__)
    finally:
        for sock in socks:
            sock.close()
    time.sleep(2)
    after = server.rss_mb()
    again = server.client.post("/v2/models/vae-decoder/infer", content=body).status_code
    server.stop()
    return {
        "clients": clients,
        "answer_mb": 8,
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "late_request": late.status_code,
        "late_request_s": round(late_s, 3),
        "rss_mb_before": round(rss[0], 1),
        "rss_mb_peak": round(max(rss), 1),
        "rss_mb_after": round(after, 1),
        "after_they_left": again,
    }


def bounds(server_factory, run: Path, quick: bool) -> dict:
    """The endless heads and the unread answers (serve_hostile's second table)."""
    megabytes = 16 if quick else 100
    return {
        "endless_url": endlessread_head(server_factory, run, "url", megabytes),
        "endless_header": endlessread_head(server_factory, run, "header", megabytes),
        "unread_answers": unread_answers(server_factory, run, 20 if quick else 200),
    }
