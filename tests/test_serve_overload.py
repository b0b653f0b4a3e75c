"""`zoo serve` under overload, with a model slow enough to be overrun: one bounded count per model
(a request holds its place in --max-queue from admission until its answer is sent), the inference
thread spent only on requests still waiting for their answers, a memory budget per worker, and a
drain on SIGTERM within its deadline.

The slow model (benchmarks/serving/slow_model.py) is the VAE generator's interface around a loop of
matrix products whose length is calibrated here to take about CALL_S on this machine; every bound
below is a multiple of the call it measured, so the tests assert behaviour, not speed."""

import json
import os
import socket
import threading
import time

import numpy as np
import pytest
from test_serve_helpers import Server, infer_json, metric, vae_run, wait_until

from benchmarks.serving.slow_model import calibrated, overrun  # the benchmark serves the same model

CALL_S = 0.15


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """(run folder, seconds per call), the call calibrated to about CALL_S."""
    folder = tmp_path_factory.mktemp("slow") / "slow"
    _, call = calibrated(vae_run(tmp_path_factory) / "generator.onnx", folder, CALL_S)
    return folder, call


def test_overload_refuses_at_once_and_answers_what_it_admits(slow, tmp_path):
    """With 4 places and a timeout of 8 calls, every admitted request can be answered in time: one
    runs while at most three wait, with room for calls slowed by the load clients on the same two
    cores. 8 clients overrun it; the excess gets 503s and nearly every admitted request its 200."""
    run, call = slow
    server = Server(
        run,
        "--max-batch",
        "1",
        "--max-queue",
        "4",
        "--timeout",
        f"{8 * call:.3f}",
        "--threads",
        "1",
        "--quiet",
        log=tmp_path / "serve.log",
    )
    try:
        counts = overrun(server.url, clients=8, seconds=3.0, pause_after_503=0.05)
    finally:
        assert server.stop() == 0
    answered, timed_out = counts.get("200", 0), counts.get("504", 0)
    assert set(counts) <= {"200", "503", "504"}, counts
    assert counts.get("503", 0) > answered, counts  # most of 8 clients find the 4 places taken
    assert answered >= 0.75 * (answered + timed_out), (counts, call)


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user and system, all threads), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads a process's CPU time from /proc")
def test_no_call_runs_for_a_request_that_has_left(slow, tmp_path):
    """One client asking again as soon as it gets its 504, with a timeout of half a call: every
    request times out, and a call started for one runs on. A request's timeout does not free the
    instance its call holds, so the next request queues (counted), times out there and leaves with
    its work: once the client stops and the running call ends, the server is idle. (Before, each
    timeout freed the instance early, the next request's call queued unseen behind the running
    one, and the backlog kept the server busy for seconds after the client had gone.)"""
    run, call = slow
    server = Server(
        run,
        "--max-batch",
        "1",
        "--max-queue",
        "4",
        "--timeout",
        f"{call / 2:.3f}",
        "--threads",
        "1",
        "--quiet",
        log=tmp_path / "serve.log",
    )
    try:
        counts = overrun(server.url, clients=1, seconds=max(2.0, 12 * call))
        assert set(counts) == {"504"}, counts
        time.sleep(2 * call)  # the call running when the last client left ends
        before = cpu_seconds(server.process.pid)
        time.sleep(6 * call)
        busy = cpu_seconds(server.process.pid) - before
        assert busy < 1.5 * call, (busy, call, counts)  # idle: not one more call's worth of work
    finally:
        assert server.stop() == 0


def test_sigterm_drains_the_admitted_requests_within_its_deadline(slow, tmp_path):
    run, call = slow
    timeout = 20 * call  # room for calls slowed by whatever else the machine runs
    server = Server(
        run,
        "--max-batch",
        "1",
        "--max-queue",
        "4",
        "--timeout",
        f"{timeout:.3f}",
        "--quiet",
        log=tmp_path / "serve.log",
    )
    assert wait_until(lambda: server.client.get("/v2/health/ready").status_code == 200)  # past its warm-up calls
    results = []

    def ask():
        import httpx

        body = infer_json(np.ones((1, 20), np.float32), "eps")
        try:
            results.append(
                httpx.post(f"{server.url}/v2/models/slow-generator/infer", json=body, timeout=60).status_code
            )
        except httpx.HTTPError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    # All four admitted, one running and three queued, before the signal: on a loaded machine the
    # threads can take longer than a call to connect.
    depth = lambda: metric(server.client.get("/metrics").text, "zoo_serve_queue_depth", model="slow-generator")  # noqa: E731
    assert wait_until(lambda: depth() >= 3, timeout=timeout / 2)
    started = time.monotonic()
    assert server.stop(timeout=timeout + 20) == 0
    took = time.monotonic() - started
    for thread in threads:
        thread.join()
    assert results == [200] * 4, results
    assert took <= timeout + 5 + 2, took  # the drain's deadline: the request timeout and 5 s


def test_sigterm_during_the_warm_up_calls_exits_0(slow, tmp_path):
    """The banner is printed before each model's warm-up calls (two calls of the slow model): a
    SIGTERM sent as soon as it appears ends the process cleanly, not by the signal."""
    run, call = slow
    server = Server(run, "--max-batch", "1", "--quiet", log=tmp_path / "serve.log")
    started = time.monotonic()
    assert server.stop(timeout=30) == 0
    assert time.monotonic() - started < 2 * call + 10
    assert "Traceback" not in server.log.read_text()


def test_a_long_head_pipelined_behind_a_slow_request_is_refused_after_its_answer(slow, tmp_path):
    """A head past the limit, sent right behind a request whose call is still running: the refusal
    waits for that request's answer, and never cuts into it."""
    run, call = slow
    server = Server(run, "--max-batch", "1", "--timeout", f"{20 * call:.3f}", "--quiet", log=tmp_path / "serve.log")
    body = json.dumps(infer_json(np.ones((1, 20), np.float32), "eps")).encode()
    first = b"POST /v2/models/slow-generator/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    try:
        with connect(server) as sock:
            sock.sendall(first + body + b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 400_000)
            chunks = []
            while chunk := sock.recv(65536):  # the server shuts its side after the refusal
                chunks.append(chunk)
        both = b"".join(chunks)
        answer, _, refusal = both.partition(b"HTTP/1.1 431")
        assert answer.startswith(b"HTTP/1.1 200") and b'"model_name":"slow-generator"' in answer, both[:300]
        assert refusal and b"connection: close" in refusal.lower(), both[-300:]
    finally:
        assert server.stop() == 0


def connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_the_memory_budget_refuses_at_once_and_comes_back(tmp_path_factory, tmp_path):
    """--max-memory-mb 2: a body of 1.5 MB being received holds 1.5 MB; meanwhile a request of
    1 MB is a 503 at once, one that could never fit a 413, and once the first has timed out the
    budget is whole again."""
    server = Server(
        vae_run(tmp_path_factory), "--max-memory-mb", "2", "--timeout", "2", "--quiet", log=tmp_path / "serve.log"
    )
    head = b"POST /v2/models/vae-encoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{"
    try:
        with connect(server) as stalled:
            stalled.sendall(head % 1_500_000)  # then nothing: it holds its share until its 408
            time.sleep(0.3)
            busy = server.client.post("/v2/models/vae-encoder/infer", content=b" " * 1_000_000)
            assert busy.status_code == 503 and "memory budget of 2 MiB" in busy.json()["error"]
            assert busy.headers["retry-after"] == "1"
            never = server.client.post("/v2/models/vae-encoder/infer", content=b" " * 3_000_000)
            assert never.status_code == 413 and "whole budget" in never.json()["error"]
            assert stalled.recv(65536).startswith(b"HTTP/1.1 408")
        request = infer_json(np.zeros((1, 1, 28, 28), np.float32), "x")
        assert server.client.post("/v2/models/vae-encoder/infer", json=request).status_code == 200
        # A JSON body's parsing counts too: 300 rows of 784 values (1.2 MB) need 10 MB as Python objects.
        big = server.client.post(
            "/v2/models/vae-encoder/infer", json=infer_json(np.zeros((300, 1, 28, 28), np.float32), "x")
        )
        assert big.status_code == 413 and "whole budget" in big.json()["error"]
    finally:
        assert server.stop() == 0


def test_an_answer_the_client_does_not_read_holds_its_memory_until_it_leaves(tmp_path_factory, tmp_path):
    """--max-memory-mb 16: a 1024-row JSON answer (about 8 MB) that its client never reads stays in
    the budget while it waits in the server's buffer, so the next such request is a 503 at once;
    once that client has gone, the same request is answered."""
    server = Server(
        vae_run(tmp_path_factory), "--max-memory-mb", "16", "--timeout", "10", "--quiet", log=tmp_path / "serve.log"
    )
    request = infer_json(np.zeros((1024, 20), np.float32), "z")
    body = json.dumps(request).encode()
    head = b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    try:
        with connect(server) as never_reads:
            never_reads.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            never_reads.sendall(head + body)
            assert wait_until(
                lambda: (
                    metric(
                        server.client.get("/metrics").text,
                        "zoo_serve_requests_total",
                        model="vae-decoder",
                        status="200",
                    )
                    == 1
                )
            )
            started = time.monotonic()
            busy = server.client.post("/v2/models/vae-decoder/infer", content=body)
            assert busy.status_code == 503 and "memory budget of 16 MiB" in busy.json()["error"]
            assert time.monotonic() - started < 1
        assert wait_until(lambda: server.client.post("/v2/models/vae-decoder/infer", content=body).status_code == 200)
    finally:
        assert server.stop() == 0
