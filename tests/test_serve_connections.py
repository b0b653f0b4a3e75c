"""Every phase of a connection to `zoo serve` has a deadline, and an answer sent before the body
arrived reaches the client, over real HTTP and raw sockets: the rest of a body after an early answer
is read and discarded for a bounded time, then the connection closes; a client that never reads
its answers loses its connection and its slot; text that is not UTF-8 is a 400 naming the field."""

import json
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from test_serve_helpers import Server, infer_json, raw_connection, read_response, vae_run, wait_until

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    return vae_run(tmp_path_factory)


@pytest.fixture(scope="module")
def server(vae, tmp_path_factory):
    server = Server(vae, "--timeout", TIMEOUT, log=tmp_path_factory.mktemp("log") / "serve.log")
    yield server
    log = server.log_text()
    assert server.stop() == 0  # stopped before the log is judged, so that a failure leaves no server behind
    assert "Traceback" not in log


def seconds_until_the_server_closes(sock, every: float = 0.25, limit: float = 12.0) -> float:
    """Send a byte every ``every`` s until the server has closed the connection (a send fails, or
    reading finds a reset), and say how long that took."""
    started = time.monotonic()
    sock.settimeout(0.01)
    while time.monotonic() - started < limit:
        try:
            sock.sendall(b"x")
        except OSError:  # EPIPE or ECONNRESET: the server closed its end for good
            return time.monotonic() - started
        try:
            while sock.recv(65536):  # the answer, then EOF after the server shut its side down
                pass
        except (TimeoutError, BlockingIOError):
            pass
        except OSError:
            return time.monotonic() - started
        time.sleep(every)
    return float("inf")


def test_a_surrogate_id_is_a_400_that_names_the_field(server):
    body = (
        b'{"id": "\\ud800", "inputs": [{"name": "z", "shape": [1, 20], "datatype": "FP32", "data": ['
        + b", ".join([b"0.5"] * 20)
        + b"]}]}"
    )
    response = server.client.post("/v2/models/vae-decoder/infer", content=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("id holds a lone surrogate") and "UTF-8" in error
    # In a parameter's key, deep in the request: named too, and the server still answers.
    body = body.replace(b'"id": "\\ud800"', b'"parameters": {"x\\udfff": 1}')
    response = server.client.post("/v2/models/vae-decoder/infer", content=body)
    assert response.status_code == 400 and response.json()["error"].startswith("a key of parameters holds")
    good = server.client.post(
        "/v2/models/vae-decoder/infer", json={"id": "é✓", **infer_json(np.zeros((1, 20), np.float32), "z")}
    )
    assert good.status_code == 200 and good.json()["id"] == "é✓"


def test_a_body_that_is_not_utf8_is_a_400(server):
    body = json.dumps(infer_json(np.zeros((1, 20), np.float32), "z")).encode("utf-16")
    response = server.client.post("/v2/models/vae-decoder/infer", content=body)
    assert response.status_code == 400 and "not UTF-8" in response.json()["error"]


def test_an_error_quoting_a_surrogate_is_valid_json(server):
    # The unknown output's name is quoted in the error: written escaped, never a failure to encode.
    request = {**infer_json(np.zeros((1, 20), np.float32), "z"), "outputs": [{"name": "x\ud800"}]}
    response = server.client.post("/v2/models/vae-decoder/infer", content=json.dumps(request).encode())
    assert response.status_code == 400 and "\\ud800" in response.json()["error"]


def test_after_an_early_413_a_trickled_body_loses_the_connection_within_the_timeout(server):
    with raw_connection(server) as sock:
        sock.sendall(b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        head = read_response(sock)
        assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
        took = seconds_until_the_server_closes(sock, every=0.25)
    # It lingers (reading and discarding) for the timeout, then closes: never for ever.
    assert TIMEOUT - 0.5 <= took <= TIMEOUT + 4, took


def test_an_early_answer_on_other_routes_closes_the_connection_too(server):
    for path in (b"/v2/models/nothing/infer", b"/v2/repository/index"):
        with raw_connection(server) as sock:
            sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            head = read_response(sock)
            assert b"connection: close" in head.lower(), head
            assert seconds_until_the_server_closes(sock) <= TIMEOUT + 4


def test_a_body_read_in_full_keeps_the_connection_alive(server):
    with raw_connection(server) as sock:
        body = json.dumps(infer_json(np.zeros((1, 20), np.float32), "z")).encode()
        request = b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        for _ in range(2):
            sock.sendall(request)
            head = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()


def test_urllib_sees_the_413_and_its_message(server):
    """http.client writes the whole body before it reads: the server must read (and drop) it, or
    the client meets a reset instead of its answer."""
    body = (
        b'{"inputs": [{"name": "z", "shape": [1, 20], "datatype": "FP32", "data": [' + b"0.1, " * 2_000_000 + b"0]}]}"
    )
    for _ in range(3):
        request = urllib.request.Request(
            f"{server.url}/v2/models/vae-decoder/infer",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 413
        assert "more than 1024 rows" in json.loads(refused.value.read())["error"]


def test_clients_that_never_read_lose_their_slots(vae, tmp_path):
    """Four clients each send three requests for 10 MB answers and never read: after the timeout
    their connections are dropped, and a new client is served instead of refused."""
    server = Server(vae, "--max-connections", "4", "--timeout", TIMEOUT, "--quiet", log=tmp_path / "serve.log")
    body = json.dumps(infer_json(np.zeros((1024, 20), np.float32), "z")).encode()
    request = b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    stuck = []
    try:
        server.client.close()  # its keep-alive connection would take a fifth of the slots
        for _ in range(4):
            sock = raw_connection(server)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request * 3)
            stuck.append(sock)
        started = time.monotonic()

        def served() -> bool:
            with raw_connection(server) as probe:
                probe.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return read_response(probe).startswith(b"HTTP/1.1 200")

        time.sleep(0.5)
        assert not served()  # all four slots are held while the answers back up
        assert wait_until(served, timeout=TIMEOUT + 10, every=0.25)
        assert time.monotonic() - started >= TIMEOUT - 0.5
    finally:
        for sock in stuck:
            sock.close()
        assert server.stop() == 0
