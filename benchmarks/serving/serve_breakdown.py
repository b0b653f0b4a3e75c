"""Where a request's microseconds go in `zoo serve`: batch-1 binary requests to the VAE generator at
concurrency 64, the cell where Triton leads, split into the parts a request passes through.

Measured in one run, on one core (the server's, as in serve_load):
- over HTTP: the real server, pinned, with serve_load's client on the other core: the infer cell and
  the health route at concurrency 64; the server's core is saturated, so 1 / (req/s) is the
  server's time per request
- in-process (no HTTP, no sockets): the same app driven through ASGI by 64 concurrent callers, and
  its health route the same way
- the parts alone, timed in a loop: parsing the request, one onnxruntime call of the mean batch
  (per request), encoding the answer

HTTP and the sockets = the infer cell over HTTP minus the app in-process; batching, futures,
metrics and the access-log layer = the app in-process minus the parts timed alone.

    python -m benchmarks.serving.serve_breakdown         # about 40 s
    python -m benchmarks.serving.serve_breakdown --quick --out /tmp/breakdown

Writes benchmarks/results/serve_breakdown-<machine>-<date>.json and .md.
"""

import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks.serving import load_client
from benchmarks.serving.harness import Server, cores, make_run, run_client

MODEL = "vae-generator"
CONCURRENCY = 64
FULL = {"seconds": 5.0, "requests": 40000, "loops": 20000, "repeats": 5}
QUICK = {"seconds": 0.5, "requests": 300, "loops": 300, "repeats": 1}


def binary_body(width: int) -> tuple:
    eps = np.random.default_rng(0).standard_normal((1, width), dtype=np.float32)
    header = json.dumps(
        {
            "inputs": [
                {"name": "eps", "shape": [1, width], "datatype": "FP32", "parameters": {"binary_data_size": eps.nbytes}}
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + eps.tobytes(), [(b"inference-header-content-length", str(len(header)).encode())]


def over_http(run: Path, plan: dict, log) -> dict:
    server_core, client_core = cores()
    server = Server([run], server_core)
    try:
        shape = load_client.input_shape(server.url, MODEL)
        job = {"requests": plan["requests"], "seconds": plan["seconds"]}
        infer = run_client(
            client_core, server.url, load_client.infer_request(server.url, MODEL, shape, binary=True), CONCURRENCY, job
        )
        health = run_client(client_core, server.url, load_client.hello_request(), CONCURRENCY, job)
    finally:
        server.stop()
    log(f"over HTTP: infer {infer['rps']:.0f} req/s, health {health['rps']:.0f} req/s")
    return {"infer_rps": infer["rps"], "health_rps": health["rps"], "pinned": server_core is not None}


async def _callers(server, method: str, path: str, body: bytes, headers: list, seconds: float) -> float:
    """Requests per second from CONCURRENCY callers, each asking again as soon as it is answered."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller():
        nonlocal done
        while time.perf_counter() < deadline:
            status, _, _ = await server.arequest(method, path, body, headers)
            assert status == 200, status
            done += 1

    started = time.perf_counter()
    callers = [asyncio.ensure_future(caller()) for _ in range(CONCURRENCY)]
    await asyncio.gather(*callers)
    return done / (time.perf_counter() - started)


def in_process(run: Path, plan: dict, log) -> dict:
    from zoo.serve.http.app import Settings, create_app
    from zoo.serve.http.inprocess import InProcessServer
    from zoo.serve.inference.models import load_models

    models = load_models([run], flags={"intra_op_threads": 1})
    server = InProcessServer(create_app(models, Settings(quiet=True)))
    body, headers = binary_body(models[MODEL].input.size)
    path = f"/v2/models/{MODEL}/infer"
    try:
        infer = server.loop.run_until_complete(_callers(server, "POST", path, body, headers, plan["seconds"]))
        health = server.loop.run_until_complete(_callers(server, "GET", "/v2/health/ready", b"", [], plan["seconds"]))
        _, _, text = server.request("GET", "/metrics")
        calls, rows = (
            float(re.search(rf'zoo_serve_batch_rows_{kind}{{model="{MODEL}"}} (\S+)', text.decode()).group(1))
            for kind in ("count", "sum")
        )
    finally:
        server.close()
    log(f"in-process: infer {infer:.0f} req/s (mean batch {rows / calls:.1f}), health {health:.0f} req/s")
    return {
        "infer_rps": infer,
        "health_rps": health,
        "mean_batch": rows / calls,
        "models": models,
        "body": body,
        "header_length": headers[0][1].decode(),
    }


def per_call_us(function, loops: int, repeats: int) -> float:
    """The median over ``repeats`` of the mean microseconds per call over ``loops`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            function()
        times.append((time.perf_counter() - started) / loops * 1e6)
    return statistics.median(times)


def parts(app: dict, plan: dict) -> dict:
    from zoo.serve import protocol

    model = app["models"][MODEL]
    body, length, limit = app["body"], app["header_length"], 64 * 2**20
    request = protocol.parse_infer(body, length, model, limit)
    batch = max(1, round(app["mean_batch"]))
    rows = np.repeat(request.batch, batch, axis=0)
    run = model.runner(0)
    outputs = dict(zip(model.output_names, run(rows)))
    one = {name: out[:1] for name, out in outputs.items()}
    loops, repeats = plan["loops"], plan["repeats"]
    return {
        "parse_us": per_call_us(lambda: protocol.parse_infer(body, length, model, limit), loops, repeats),
        "onnxruntime_us": per_call_us(lambda: run(rows), max(1, loops // 20), repeats) / batch,
        "encode_us": per_call_us(lambda: protocol.encode_response(model, request, one), loops, repeats),
        "batch": batch,
    }


def breakdown(http: dict, app: dict, alone: dict) -> list:
    total = 1e6 / http["infer_rps"]
    app_us = 1e6 / app["infer_rps"]
    timed = alone["parse_us"] + alone["onnxruntime_us"] + alone["encode_us"]
    return [
        ("HTTP: uvicorn, httptools, the sockets (the cell over HTTP minus the app in-process)", total - app_us),
        ("parsing the request (JSON header, checks, the tensor's bytes)", alone["parse_us"]),
        ("batching hand-off, queue, futures, timeout, metrics, middleware (the rest of the app)", app_us - timed),
        (f"onnxruntime (one call of {alone['batch']} rows, per request)", alone["onnxruntime_us"]),
        ("encoding the answer", alone["encode_us"]),
        ("total, per request, over HTTP", total),
    ]


def markdown(result: dict) -> str:
    m, h, a = result["machine"], result["http"], result["in_process"]
    lines = [
        f"# Where a zoo serve request's time goes ({m['cpu']}, {m['cores']} cores, {m['date']})",
        "",
        f"Batch-1 binary requests to {MODEL} at concurrency {CONCURRENCY}, the server on one core "
        f"({'pinned' if h['pinned'] else 'not pinned'}), onnxruntime with one thread. Over HTTP: "
        f"{h['infer_rps']:,.0f} req/s (health route {h['health_rps']:,.0f}); in-process, no HTTP: "
        f"{a['infer_rps']:,.0f} req/s (health route {a['health_rps']:,.0f}), mean batch {a['mean_batch']:.1f}.",
        "",
        "| part | us per request | share |",
        "|---|---:|---:|",
    ]
    total = result["parts"][-1][1]
    for name, us in result["parts"]:
        lines.append(f"| {name} | {us:.1f} | {100 * us / total:.0f}% |")
    lines += [
        "",
        f"The health route costs {1e6 / h['health_rps']:.1f} us per request over HTTP and "
        f"{1e6 / a['health_rps']:.1f} us in-process.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = machine.arguments(__doc__, quick="short loops")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    server_core, _ = cores()
    with tempfile.TemporaryDirectory() as scratch:
        run = make_run(Path(scratch) / "vae", "vae")
        http = over_http(run, plan, log)
        if server_core is not None:  # the in-process parts on the core the server had
            os.sched_setaffinity(0, {int(server_core)})
        app = in_process(run, plan, log)
        alone = parts(app, plan)
    app = {k: v for k, v in app.items() if k not in ("models", "body", "header_length")}
    result = {
        "benchmark": "serve_breakdown",
        "quick": args.quick,
        "plan": plan,
        "machine": machine.describe(),
        "http": http,
        "in_process": app,
        "alone": alone,
        "parts": breakdown(http, app, alone),
    }
    text = markdown(result)
    machine.publish("serve_breakdown", result, text, args.out)


if __name__ == "__main__":
    main()
