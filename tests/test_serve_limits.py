"""`zoo serve` against careless and hostile clients, over real HTTP and raw sockets: every resource a
client can make the server spend is bounded (rows, body, answer, connections, time), client mistakes
are a 4xx with one line, and a real server fault is a 500 whose log line says what failed."""

import json
import re
import selectors
import socket
import time

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from test_serve_helpers import Server, infer_json, metric, raw_connection, read_all, read_response, vae_run, wait_until


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    return vae_run(tmp_path_factory)


@pytest.fixture(scope="module")
def server(vae, tmp_path_factory):
    """Small limits, so that each is easy to cross: 8 rows, 64 KiB answers, 2 s to send a request."""
    server = Server(
        vae,
        "--max-batch",
        "8",
        "--max-response-mb",
        "0.0625",
        "--timeout",
        "2",
        log=tmp_path_factory.mktemp("log") / "serve.log",
    )
    yield server
    assert server.stop() == 0


def eps_request(rows: int, **extra) -> dict:
    return infer_json(np.zeros((rows, 20), np.float32), "eps", **extra)


def calls(server, model: str) -> float:
    return metric(server.client.get("/metrics").text, "zoo_serve_batch_rows_count", model=model)


def test_more_rows_than_the_max_batch_are_refused_before_any_work(server):
    before = calls(server, "vae-decoder")
    response = server.client.post("/v2/models/vae-decoder/infer", json=infer_json(np.zeros((9, 20), np.float32), "z"))
    assert response.status_code == 400
    assert "9 rows" in response.json()["error"] and "at most 8" in response.json()["error"]
    assert calls(server, "vae-decoder") == before  # onnxruntime never ran
    full = infer_json(np.zeros((8, 20), np.float32), "z", parameters={"binary_data_output": True})
    assert server.client.post("/v2/models/vae-decoder/infer", json=full).status_code == 200


def test_an_answer_over_the_response_limit_is_refused_unrun(server):
    # 8 images of 784 floats: about 100 KB in JSON, over the 64 KiB limit; 25 KB as binary, under it.
    before = calls(server, "vae-generator")
    refused = server.client.post("/v2/models/vae-generator/infer", json=eps_request(8))
    assert refused.status_code == 400 and "response limit" in refused.json()["error"]
    assert calls(server, "vae-generator") == before
    binary = server.client.post(
        "/v2/models/vae-generator/infer", json=eps_request(8, parameters={"binary_data_output": True})
    )
    assert binary.status_code == 200 and len(binary.content) > 8 * 784 * 4


def test_a_body_longer_than_the_max_batch_needs_is_413_unread(server):
    # vae-decoder takes 8 rows of 20 values: a 10 MB body is no request it could need.
    head = b'{"inputs": [{"name": "z", "shape": [1, 20], "datatype": "FP32", "data": ['
    body = head + b"0.1, " * 2_000_000 + b"0]}]}"
    response = server.client.post("/v2/models/vae-decoder/infer", content=body)
    assert response.status_code == 413 and "more than 8 rows (the max batch of vae-decoder)" in response.json()["error"]


@pytest.mark.parametrize("depth", [1025, 100_000])
def test_deeply_nested_json_is_400_without_a_traceback(server, depth):
    # vae-encoder reads bodies up to 266 KB here (8 rows of 784 values): 100,000 levels fit in it.
    response = server.client.post("/v2/models/vae-encoder/infer", content=b"[" * depth + b"]" * depth)
    assert response.status_code == 400 and "nested deeper" in response.json()["error"]
    assert "Traceback" not in server.log_text()


def test_a_stalled_body_is_answered_408_and_dropped(server):
    """The client's own slowness is a 4xx (Request Timeout), never a server error."""
    with raw_connection(server) as sock:
        sock.sendall(b'POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"in')
        started = time.monotonic()
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within the timeout of 2 s" in answer
        assert time.monotonic() - started < 10
        sock.settimeout(15)
        assert read_all(sock) == b""  # then the connection is closed: the rest of the body never comes


def test_headers_that_trickle_past_the_timeout_lose_the_connection(server):
    """Closed by the header deadline (--timeout 2), not before: a byte every 0.2 s keeps the
    connection busy, so only the deadline on the whole head can end it."""
    with raw_connection(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        closed = False
        for _ in range(40):  # a byte every 0.2 s: never idle, never done (the timeout is 2 s)
            try:
                sock.sendall(b"X")
                time.sleep(0.2)
            except OSError:
                closed = True
                break
            sock.setblocking(False)
            try:
                closed = sock.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:  # reset: closed as well
                closed = True
            sock.setblocking(True)
            if closed:
                break
        elapsed = time.monotonic() - started
        assert closed
        assert 1.5 < elapsed < 6, elapsed  # the 2 s deadline, with slack either way


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def answer_to_an_endless_head(server, head: bytes, total: int = 100 * 2**20) -> tuple:
    """(the first line of the answer, seconds until it came) for ``head`` followed by up to
    ``total`` bytes of more of it, 64 KiB at a time, looking for an answer between pieces."""
    piece = b"a" * 65536
    with raw_connection(server) as sock:
        started = time.monotonic()
        sock.sendall(head)
        sock.setblocking(False)
        got = b""
        for _ in range(total // len(piece)):
            try:
                got += sock.recv(65536)
            except BlockingIOError:
                pass
            if b"\r\n" in got:
                break
            try:
                sock.send(piece)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break  # closed under us: whatever was answered is read below
        sock.setblocking(True)
        sock.settimeout(5)
        while b"\r\n\r\n" not in got and (chunk := sock.recv(65536)):
            got += chunk
        return got.split(b"\r\n", 1)[0], time.monotonic() - started


@pytest.mark.parametrize(
    "head, status",
    [(b"GET /", b"414 URI Too Long"), (b"GET / HTTP/1.1\r\nX-Long: ", b"431 Request Header Fields Too Large")],
    ids=["request-line", "header"],
)
def test_a_100_mb_request_line_or_header_is_refused_within_a_second(server, head, status):
    """Counted as it arrives, before the parser sees it: the answer comes at the 64 KiB default,
    and the server's memory does not grow with what the client goes on sending."""
    assert server.client.get("/v2/health/live").status_code == 200
    before = rss_mb(server.process.pid)
    first_line, seconds = answer_to_an_endless_head(server, head)
    assert first_line == b"HTTP/1.1 " + status and seconds < 1, (first_line, seconds)
    assert server.client.get("/v2/health/live").status_code == 200
    assert rss_mb(server.process.pid) < before + 16


def test_a_head_within_the_limit_is_served(server):
    """60 KiB of headers and a body much larger than the limit, arriving with the head."""
    request = infer_json(np.zeros((4, 1, 28, 28), np.float32), "x")
    headers = {f"x-pad-{i}": "p" * 1000 for i in range(60)}
    response = server.client.post("/v2/models/vae-encoder/infer", json=request, headers=headers)
    assert response.status_code == 200, response.text


def hostile_connection(server, kind: str) -> socket.socket:
    """A connection that holds its place: an answered keep-alive request it never follows up, a
    request head still trickling in, or a body stalled after 4 bytes."""
    sock = raw_connection(server)
    try:
        sock.sendall(
            {
                "idle": b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n",
                "trickling": b"GET /v2/health/live HTTP/1.1\r\nHo",
                "stalled": b'POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"in',
            }[kind]
        )
    except OSError:
        pass  # refused and closed before it could send: seen as refused below
    return sock


def first_answers(socks: list, within: float) -> dict:
    """{socket: the first bytes it received, b"" for a close or reset} for those that received
    anything within ``within`` seconds; the others are missing."""
    got = {}
    with selectors.DefaultSelector() as selector:  # not select(): descriptors may pass 1024
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while len(got) < len(socks) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                try:
                    got[key.fileobj] = key.fileobj.recv(65536)
                except OSError:
                    got[key.fileobj] = b""
                selector.unregister(key.fileobj)
    return got


def test_idle_slow_and_stalled_connections_past_the_limit_are_refused_and_the_rest_expire(vae, tmp_path):
    """300 idle, trickling and stalled connections against --max-connections 32: those past the
    limit get a 503 at once; of the 32 held, each trickling head is closed and each stalled body
    answered 408 at its 2 s deadline however it trickles, each idle one at uvicorn's 5 s keep-alive,
    and a healthy client refused while they hold the server is served once they are gone."""
    limit = 32
    server = Server(vae, "--max-connections", str(limit), "--timeout", "2", "--quiet", log=tmp_path / "serve.log")
    kinds = ("idle", "trickling", "stalled")
    hostile = []
    try:
        opened = time.monotonic()
        hostile = [(kinds[i % 3], hostile_connection(server, kinds[i % 3])) for i in range(300)]
        answers = first_answers([sock for _, sock in hostile], within=1)  # before any deadline
        refused = {sock for sock, data in answers.items() if data == b"" or data.startswith(b"HTTP/1.1 503")}
        held = [(kind, sock) for kind, sock in hostile if sock not in refused]
        assert len(refused) >= 300 - limit and len(held) <= limit
        assert {kind for kind, _ in held} == set(kinds)  # every kind holds some of the places
        assert all(answers[sock].startswith(b"HTTP/1.1 200") for kind, sock in held if kind == "idle")
        assert all(sock not in answers for kind, sock in held if kind != "idle")  # waiting for their deadline

        assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 503  # the server is full
        ended, served = {}, None  # socket -> (seconds after opening, what came last); when the client got in
        waiting = {sock: kind for kind, sock in held}
        while (waiting or served is None) and time.monotonic() - opened < 20:
            for sock, kind in waiting.items():
                if kind == "trickling":
                    try:
                        sock.sendall(b"s")
                    except OSError:
                        pass
            for sock, data in first_answers(list(waiting), within=0.2).items():
                if waiting[sock] == "idle" and data:
                    continue  # more of its 200 answer: its end is still to come
                ended[sock] = (time.monotonic() - opened, data)
                del waiting[sock]
            if served is None:
                try:
                    if httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200:
                        served = time.monotonic() - opened
                except httpx.TransportError:
                    pass  # reset while refused: as full as a 503
        assert not waiting, f"{len(waiting)} held connections never ended"
        for kind, sock in held:
            seconds, data = ended[sock]
            if kind == "stalled":
                assert data.startswith(b"HTTP/1.1 408") and 1.5 < seconds < 6, (seconds, data[:40])
            elif kind == "trickling":
                assert data == b"" and 1.5 < seconds < 6, (seconds, data[:40])
            else:
                assert data == b"" and 4 < seconds < 10, seconds
        assert served is not None and served < 12
    finally:
        for _, sock in hostile:
            sock.close()
        assert server.stop() == 0


def test_past_max_connections_a_new_connection_is_refused_at_once(vae, tmp_path):
    server = Server(vae, "--max-connections", "8", "--quiet", log=tmp_path / "serve.log")
    held = []
    try:
        for _ in range(7):  # with the test client's own connection, the server holds 8
            sock = raw_connection(server)
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            held.append(sock)
        assert server.client.get("/v2/health/live").status_code == 200
        with raw_connection(server) as extra:
            refusal = read_all(extra)  # answered without sending a byte, then closed
        head, body = refusal.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in head
        assert "limit of 8 open connections" in json.loads(body)["error"]
        for sock in held:
            sock.close()
        assert wait_until(lambda: raw_probe(server))
    finally:
        for sock in held:
            sock.close()
        assert server.stop() == 0


def raw_probe(server) -> bool:
    with raw_connection(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_all(sock).startswith(b"HTTP/1.1 200")


def failing_generator(generator, folder):
    """The generator's interface and metadata, with a graph that runs for one row and fails for more
    (a Reshape to a fixed batch of 1): onnxruntime itself fails, as a broken model would."""
    model = onnx.load(generator)
    (source,), (target,) = model.graph.input, model.graph.output
    graph = helper.make_graph(
        [
            helper.make_node("Pad", [source.name, "pads"], ["padded"]),
            helper.make_node("Reshape", ["padded", "shape"], [target.name]),
        ],
        "fails_past_one_row",
        [source],
        [target],
        [
            helper.make_tensor("pads", TensorProto.INT64, [4], [0, 0, 0, 784 - 20]),
            helper.make_tensor("shape", TensorProto.INT64, [4], [1, 1, 28, 28]),
        ],
    )
    broken = helper.make_model(graph, opset_imports=model.opset_import)
    broken.metadata_props.extend(model.metadata_props)
    folder.mkdir()
    onnx.save(broken, folder / "generator.onnx")
    return folder


def test_an_onnxruntime_failure_is_a_500_that_the_log_explains(vae, tmp_path):
    run = failing_generator(vae / "generator.onnx", tmp_path / "broken")
    server = Server(run, log=tmp_path / "serve.log")
    try:
        assert server.client.post("/v2/models/broken-generator/infer", json=eps_request(1)).status_code == 200
        response = server.client.post("/v2/models/broken-generator/infer", json=eps_request(2))
        assert response.status_code == 500 and "inference failed" in response.json()["error"]
        assert wait_until(lambda: "error: broken-generator: inference failed" in server.log_text())
        log = server.log_text()
        assert "Traceback" not in log
        (line,) = [line for line in log.splitlines() if line.startswith("error:")]
        assert re.search(r"inference failed \(\w+", line)
    finally:
        assert server.stop() == 0


def test_the_hostile_client_benchmark_runs_and_memory_comes_back(tmp_path):
    """`python -m benchmarks.serving.serve_hostile --quick` end to end: every hostile attempt refused with a 4xx, the
    server's memory back within 50 MB of its steady state after large requests, and a healthy
    request answered while slow clients hold connections."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.serving.serve_hostile", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result_file,) = tmp_path.glob("serve_hostile-*.json")
    result = json.loads(result_file.read_text())
    assert [a["status"] for a in result["attempts"]] == [413, 400]
    assert result["burst"]["rss_mb_peak"] > result["burst"]["rss_mb_steady"]
    assert result["burst"]["rss_mb_above_steady"] < 50
    assert result["slow_clients"]["healthy_statuses"] == [200]
    assert "above the steady state" in result_file.with_suffix(".md").read_text()
    # The attempts that once got through, each refused or bounded as the README says.
    holes = result["holes"]
    assert holes["surrogate_id"]["status"] == 400 and not holes["surrogate_id"]["traceback_in_log"]
    assert holes["trickle_after_413"]["connection_close"] and holes["trickle_after_413"]["closed_after_s"] < 8
    assert holes["never_reading_clients"]["status"] == 200
    assert all(seen.startswith("413: ") for seen in holes["urllib_large_body"]["seen"])
    assert holes["delay_zero"]["served"] == ["delay 0 ms [config.pbtxt]"]
    assert holes["info_cache_wrong_types"]["exit_code"] == 0
    assert set(holes["slow_model_overload"]["counts"]) <= {"200", "503", "504"}
    assert set(holes["many_large_bodies"]["statuses"]) <= {"200", "503"}
    assert "## The attempts that once got through" in result_file.with_suffix(".md").read_text()
    # What a client can make the server hold: a head, unread answers, a stalled body.
    for key, status in (("endless_url", "414"), ("endless_header", "431")):
        assert holes[key]["first_line"].startswith(f"HTTP/1.1 {status}") and holes[key]["seconds"] < 1, holes[key]
        assert holes[key]["health_ms_max"] < 250 and holes[key]["rss_mb_after"] < holes[key]["rss_mb_before"] + 16
    unread = holes["unread_answers"]
    assert unread["rss_mb_peak"] < unread["rss_mb_before"] + 128 + 24 and unread["after_they_left"] == 200, unread
    assert holes["stalled_body"]["status"] == 408
