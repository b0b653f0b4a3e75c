"""The load generator of the serving benchmarks, run as its own (pinned) process by the harness: a
closed loop of keep-alive HTTP/1.1 connections, each sending one prepared request and waiting for its
answer before the next. A hand-written client on asyncio streams, so that the client's own cost per
request stays small beside the server's on a shared machine.

    echo '{"url": ..., "method": ..., "path": ..., ...}' | python -m benchmarks.serving.load_client
    python -m benchmarks.serving.load_client --inprocess FILE.onnx CALLS   # the in-process onnxruntime floor

Prints one JSON summary: requests/s, p50/p90/p99 in ms, errors and the count of each status.
Imports only the standard library (and onnxruntime/numpy for --inprocess), to start fast.
"""

import asyncio
import base64
import json
import random
import re
import struct
import sys
import time
import urllib.request
from urllib.parse import urlsplit

LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)  # not inference-header-content-length
CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)  # KServe's binary answers


def hello_request() -> dict:
    return {"method": "GET", "path": "/v2/health/live", "headers": {}, "body": ""}


def input_shape(url: str, model: str) -> dict:
    with urllib.request.urlopen(f"{url}/v2/models/{model}") as response:
        meta = json.load(response)
    return {"name": meta["inputs"][0]["name"], "shape": [1, *meta["inputs"][0]["shape"][1:]]}


def infer_request(url: str, model: str, tensor: dict, binary: bool) -> dict:
    """One batch-1 request with standard-normal values, as JSON tensors or binary ones."""
    size = 1
    for dim in tensor["shape"]:
        size *= dim
    rng = random.Random(0)
    values = [rng.gauss(0, 1) for _ in range(size)]
    entry = {"name": tensor["name"], "shape": tensor["shape"], "datatype": "FP32"}
    headers = {"Content-Type": "application/json"}
    if binary:
        entry["parameters"] = {"binary_data_size": 4 * size}
        header = json.dumps({"inputs": [entry], "parameters": {"binary_data_output": True}}).encode()
        body = header + struct.pack(f"<{size}f", *values)
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))}
    else:
        body = json.dumps({"inputs": [{**entry, "data": values}]}).encode()
    return {
        "method": "POST",
        "path": f"/v2/models/{model}/infer",
        "headers": headers,
        "body": base64.b64encode(body).decode(),
    }


def _request_bytes(job: dict, host: str) -> bytes:
    body = base64.b64decode(job["body"])
    lines = [
        f"{job['method']} {job['path']} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in job["headers"].items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answer(reader) -> tuple:
    """(status, whether the server will close the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = LENGTH.search(head)
    if length:
        await reader.readexactly(int(length.group(1)))
    elif CHUNKED.search(head):  # only on answers without a length, so the usual path costs nothing more
        await _skip_chunks(reader)
    return int(head[9:12]), b"connection: close" in head.lower()


async def _skip_chunks(reader) -> None:
    """Read a chunked body to its end: sized chunks, a zero-size one, trailers, an empty line."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return
        await reader.readexactly(size + 2)  # the chunk and its CRLF


async def _closed_loop(job: dict) -> dict:
    where = urlsplit(job["url"])
    request = _request_bytes(job, where.netloc)
    deadline = time.perf_counter() + job["seconds"]
    budget = {"warmup": job["warmup"], "measured": job["requests"]}
    samples, started = [], []  # (status, seconds); when the first measured request went out

    async def worker():
        reader = writer = None
        while time.perf_counter() < deadline:
            phase = "warmup" if budget["warmup"] > 0 else "measured"
            if budget[phase] <= 0:
                break
            budget[phase] -= 1
            if phase == "measured" and not started:
                started.append(time.perf_counter())
            if writer is None:
                reader, writer = await asyncio.open_connection(where.hostname, where.port)
            sent = time.perf_counter()
            try:
                writer.write(request)
                status, closing = await _answer(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                status, closing = 0, True  # 0: the connection failed
            if phase == "measured":
                samples.append((status, time.perf_counter() - sent))
            if closing:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(job["concurrency"])))
    return summary(samples, time.perf_counter() - (started[0] if started else time.perf_counter()))


def _percentiles(seconds: list, suffix: str = "") -> dict:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    pick = lambda q: 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {f"p50_ms{suffix}": pick(0.50), f"p90_ms{suffix}": pick(0.90), f"p99_ms{suffix}": pick(0.99)}


def summary(samples: list, elapsed: float) -> dict:
    statuses = {}
    for status, _ in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    result = {
        "requests": len(samples),
        "seconds": elapsed,
        "rps": len(samples) / elapsed if elapsed > 0 else 0.0,
        "errors": sum(1 for status, _ in samples if status != 200),
        "status_counts": statuses,
        **_percentiles([s for _, s in samples]),
    }
    for status in statuses:  # per status too: the overload run reports how fast 503s come back
        if status != "200":
            result.update(_percentiles([s for code, s in samples if str(code) == status], f"_{status}"))
    return result


def inprocess(path: str, calls: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the benchmark's server runs it (--threads 1)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    node = session.get_inputs()[0]
    feed = {node.name: np.random.default_rng(0).standard_normal((1, *node.shape[1:]), dtype=np.float32)}
    for _ in range(min(100, calls)):
        session.run(None, feed)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        session.run(None, feed)
        seconds.append(time.perf_counter() - start)
    return {"calls": calls, "rps": calls / sum(seconds), **_percentiles(seconds)}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inprocess"]:
        print(json.dumps(inprocess(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps(asyncio.run(_closed_loop(json.load(sys.stdin)))))
