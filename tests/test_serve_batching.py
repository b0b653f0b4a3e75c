"""`zoo serve` under concurrent load: merged batches give each request its own rows, a full queue
is refused with 503, slow requests time out with 504, and SIGTERM loses no accepted request.

Load here is bounded (a few dozen requests) and nothing asserts a time."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from test_serve_helpers import Server, conv_run, infer_json, metric, vae_run, wait_until

from zoo.export import runtime


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {"vae": vae_run(tmp_path_factory), "conv-ae": conv_run(tmp_path_factory)}


def binary_infer(client, model: str, rows: np.ndarray, input_name: str = "z"):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": input_name,
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return client.post(
        f"/v2/models/{model}/infer",
        content=header + rows.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def concurrently(count: int, call):
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def test_concurrent_requests_each_get_their_own_rows(runs, tmp_path):
    server = Server(
        runs["vae"], runs["conv-ae"], "--max-delay-ms", "20", "--max-batch", "64", "--quiet", log=tmp_path / "serve.log"
    )
    rng = np.random.default_rng(0)
    jobs = []  # (model, input name, rows, expected)
    for i in range(48):
        run, shape = ("vae", (20,)) if i % 2 else ("conv-ae", (8, 7, 7))
        z = rng.standard_normal((1 + i % 3, *shape), dtype=np.float32)
        jobs.append((f"{run}-decoder", z, runtime.Decoder(runs[run] / "decoder.onnx").decode(z)))
    try:
        responses = concurrently(
            len(jobs),
            lambda i: server.client.post(f"/v2/models/{jobs[i][0]}/infer", json=infer_json(jobs[i][1], "z", id=str(i))),
        )
        for i, (response, (_, _z, expected)) in enumerate(zip(responses, jobs)):
            answer = response.json()
            assert response.status_code == 200 and answer["id"] == str(i)
            np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], expected.shape), expected, atol=1e-6)
        text = server.client.get("/metrics").text
        calls = sum(metric(text, "zoo_serve_batch_rows_count", model=f"{run}-decoder") for run in runs)
        rows = sum(metric(text, "zoo_serve_batch_rows_sum", model=f"{run}-decoder") for run in runs)
        assert rows == sum(len(z) for _, z, _ in jobs)
        assert calls < len(jobs)  # some requests shared an onnxruntime call
    finally:
        assert server.stop() == 0


def test_a_full_queue_answers_503_with_retry_after(runs, tmp_path):
    # Each request fills a call on its own (256 rows, the max batch), so the queue fills quickly.
    server = Server(runs["conv-ae"], "--max-queue", "2", "--max-batch", "256", "--quiet", log=tmp_path / "serve.log")
    z = np.zeros((256, 8, 7, 7), np.float32)
    try:
        responses = concurrently(24, lambda _: binary_infer(server.client, "conv-ae-decoder", z))
        statuses = [r.status_code for r in responses]
        assert set(statuses) == {200, 503}, statuses
        busy = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" and "queue is full" in r.json()["error"] for r in busy)
        assert binary_infer(server.client, "conv-ae-decoder", z[:1]).status_code == 200  # and it recovers
        text = server.client.get("/metrics").text
        assert metric(text, "zoo_serve_errors_total", model="conv-ae-decoder", status="503") == len(busy)
    finally:
        assert server.stop() == 0


def test_requests_past_the_timeout_answer_504(runs, tmp_path):
    server = Server(runs["conv-ae"], "--timeout", "0.1", "--max-batch", "1024", "--quiet", log=tmp_path / "serve.log")
    z = np.zeros((1024, 8, 7, 7), np.float32)  # a call each
    try:
        responses = concurrently(12, lambda _: binary_infer(server.client, "conv-ae-decoder", z))
        statuses = [r.status_code for r in responses]
        # 408 where a body had not all arrived by the deadline (12 bodies of 1.6 MB take a while at 0.1 s).
        assert set(statuses) <= {200, 408, 504} and 504 in statuses, statuses
        assert all("timeout" in r.json()["error"] for r in responses if r.status_code in (408, 504))
        assert wait_until(
            lambda: 'zoo_serve_queue_depth{model="conv-ae-decoder"} 0.0' in server.client.get("/metrics").text
        )  # timed-out requests left the queue
    finally:
        assert server.stop() == 0


def test_sigterm_finishes_every_accepted_request_and_exits_0(runs, tmp_path):
    server = Server(runs["conv-ae"], "--max-batch", "1024", log=tmp_path / "serve.log")
    z = np.zeros((1024, 8, 7, 7), np.float32)
    count = 12

    def accepted() -> float:
        # Each request fills the max batch, so each onnxruntime call started (the batch-size
        # histogram's count) is one request; with the queued ones, that is every request accepted.
        text = server.client.get("/metrics").text
        return metric(text, "zoo_serve_batch_rows_count", model="conv-ae-decoder") + metric(
            text, "zoo_serve_queue_depth", model="conv-ae-decoder"
        )

    try:
        with ThreadPoolExecutor(count) as pool, httpx.Client(base_url=server.url, timeout=60) as load:
            pending = [pool.submit(binary_infer, load, "conv-ae-decoder", z) for _ in range(count)]
            # Every request is in (most still queued: each call takes tens of ms). Then stop the server.
            assert wait_until(lambda: accepted() >= count, timeout=30)
            status = server.stop(timeout=60)
            responses = [p.result() for p in pending]
    finally:
        server.kill()  # a no-op once stopped; a failed wait must not leave the server running
    assert status == 0
    assert [r.status_code for r in responses] == [200] * count
    assert all(len(r.content) > 1024 * 784 * 4 for r in responses)
    log = server.log.read_text()
    assert log.count('"POST /v2/models/conv-ae-decoder/infer HTTP/1.1" 200') == count
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v2/health/live")
