"""`zoo serve --workers 2`: two processes behind one port, /metrics counting every request once
whichever worker answered it, a dead worker replaced (and said so), and SIGTERM draining all."""

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from test_serve_helpers import Server, conv_run, infer_json, metric, vae_run, wait_until


def workers(server) -> list:
    """The PIDs of the server's worker processes (not multiprocessing's resource tracker)."""
    pid = server.process.pid
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    return [int(c) for c in children if b"spawn_main" in open(f"/proc/{c}/cmdline", "rb").read()]


def alive(pid: int) -> bool:
    """Running, not gone and not a zombie (an orphan's exit may wait for a reaper)."""
    try:
        state = next(line for line in open(f"/proc/{pid}/status") if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "Z" not in state.split()[1]


def fresh_post(server, path: str, body: dict) -> httpx.Response:
    # A connection per request, so the kernel spreads them over the workers.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.post(path, json=body, headers={"Connection": "close"})


def infer_count(server) -> float:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        text = client.get("/metrics").text
    return metric(text, "zoo_serve_requests_total", model="vae-generator", status="200")


def served_by(server, path: str = "/v2/models/vae-generator/infer") -> dict:
    """{worker pid: requests to ``path`` it answered}, from the access log (each line names its worker)."""
    counts = {}
    for line in server.log_text().splitlines():
        words = line.split()
        if words[:1] == ["worker"] and len(words) > 1 and words[1].isdigit() and f'"POST {path}' in line:
            counts[int(words[1])] = counts.get(int(words[1]), 0) + 1
    return counts


def post_until(server, enough, most: int = 200) -> int:
    """Infer requests, each on a connection of its own, until ``enough(served_by(server))`` (at
    most ``most``); returns how many were sent."""
    request = infer_json(np.zeros((1, 20), np.float32), "eps")
    already = sum(served_by(server).values())
    for sent in range(1, most + 1):
        assert fresh_post(server, "/v2/models/vae-generator/infer", request).status_code == 200
        logged = wait_until(lambda sent=sent: sum(served_by(server).values()) >= already + sent, timeout=5)
        if logged and enough(served_by(server)):
            return sent
    raise AssertionError(f"after {most} requests: {served_by(server)}")


@pytest.fixture
def server(tmp_path_factory, tmp_path):
    server = Server(vae_run(tmp_path_factory), "--workers", "2", log=tmp_path / "serve.log")
    assert wait_until(lambda: len(workers(server)) == 2, timeout=30)
    yield server
    if server.process.returncode is None:  # not killed by the test: SIGTERM must end it cleanly
        assert server.stop() == 0, server.log_text()[-3000:]


def test_two_workers_count_every_request_once(server):
    assert any("2 workers" in line for line in server.banner)
    # Until both workers have answered some (the access log says which did), then a few more.
    sent = post_until(server, lambda served: len(served) == 2 and min(served.values()) >= 3)
    served = served_by(server)
    assert sorted(served) == sorted(workers(server)) and sum(served.values()) == sent
    for _ in range(6):  # whichever worker answers /metrics, it reports both workers' counts
        assert infer_count(server) == sent


def test_a_dead_worker_is_replaced_and_logged_and_its_counts_kept(server):
    before = post_until(server, lambda served: len(served) == 2)  # both have answered some
    victim = workers(server)[0]
    victims_share = served_by(server)[victim]
    assert victims_share >= 1
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: f"worker {victim} died" in server.log_text(), timeout=30), server.log_text()
    assert wait_until(lambda: len(workers(server)) == 2 and victim not in workers(server), timeout=30)
    after = post_until(server, lambda served: sum(served.values()) >= before + 10)
    assert infer_count(server) == before + after  # the dead worker's answers still count, once
    assert served_by(server)[victim] == victims_share  # and it had answered some of them


def test_workers_end_with_a_supervisor_killed_outright(server):
    pids = workers(server)
    server.kill()  # SIGKILL: the supervisor gets no chance to stop them
    assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=30)


def test_sigterm_drains_every_worker_and_exits_0(tmp_path_factory, tmp_path):
    server = Server(conv_run(tmp_path_factory), "--workers", "2", log=tmp_path / "serve.log")
    z = np.zeros((1024, 8, 7, 7), np.float32)  # a max batch each: one onnxruntime call per request
    count = 8

    def accepted() -> float:  # calls started plus requests queued, summed over both workers
        with httpx.Client(base_url=server.url, timeout=30) as client:
            text = client.get("/metrics").text
        return metric(text, "zoo_serve_batch_rows_count", model="conv-ae-decoder") + metric(
            text, "zoo_serve_queue_depth", model="conv-ae-decoder"
        )

    try:
        assert wait_until(lambda: len(workers(server)) == 2, timeout=30)
        pids = workers(server)
        with ThreadPoolExecutor(count) as pool:
            pending = [
                pool.submit(fresh_post, server, "/v2/models/conv-ae-decoder/infer", infer_json(z, "z"))
                for _ in range(count)
            ]
            assert wait_until(lambda: accepted() >= count, timeout=60)
            status = server.stop(timeout=60)
            responses = [p.result() for p in pending]
    finally:
        server.kill()
    assert status == 0
    assert [r.status_code for r in responses] == [200] * count
    assert not any(alive(pid) for pid in pids)
    # The workers share one stderr: each access-log line names the worker that wrote it.
    posts = [line for line in server.log.read_text().splitlines() if '"POST /v2/models/conv-ae-decoder/infer' in line]
    assert len(posts) == count and all(line.split()[:2] in (["worker", str(pid)] for pid in pids) for line in posts), (
        posts
    )
