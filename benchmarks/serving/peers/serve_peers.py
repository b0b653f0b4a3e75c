"""`zoo serve` beside the systems a user would pick instead, serving the same VAE generator file:
Triton 2.51 with its onnxruntime backend (queue delay 0 and 200 us), Triton's Python backend running
onnxruntime, the KServe model server and Seldon MLServer, each with onnxruntime at one intra-op
thread. Each server runs pinned to one core and serve_load's load client to the other, and each gets
the same five cells: batch-1 requests with JSON and binary tensors at concurrency 1 and 64, and the
health route at 64. The results hold the ratios the targets need: zoo serve against Triton's best
setting in every cell (>= 0.9x), and against KServe and MLServer at concurrency 64 (>= 5x).

Triton comes from `bash scripts/triton.sh build` (.triton/); KServe, MLServer and the Python
backend's numpy and onnxruntime are installed here, pinned, into .peers/ (git-ignored) on first use.
A peer that cannot be installed or started is recorded with the reason and the others still run.
Writes benchmarks/results/serve_peers-<machine>-<date>.json, .md and .png.

    python -m benchmarks.serving.peers.serve_peers          # the full run: a few minutes on 2 cores
    python -m benchmarks.serving.peers.serve_peers --quick --out /tmp/peers --only zoo,triton-ort  # a smoke run
    python -m benchmarks.serving.serve_load --peers         # the same, inside serve_load's full run
"""

import base64
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import machine
from benchmarks.serving import load_client
from benchmarks.serving.harness import cores, make_run, run_client
from benchmarks.serving.peers.peer_processes import HEALTH, Context
from benchmarks.serving.peers.peer_servers import (
    CELL_TITLES,
    CELLS,
    FULL,
    GROUPS,
    LABELS,
    MODEL,
    QUICK,
    STARTERS,
    Running,
    tensor_dims,
)
from benchmarks.serving.peers.serve_peers_report import markdown, plot, targets


def requests_for(generator: Path) -> dict:
    """The batch-1 requests every server gets (the same bytes), and the answer they must give."""
    import numpy as np
    import onnxruntime as ort

    dims = tensor_dims(generator)
    tensor = {"name": dims["input"], "shape": [1, *dims["input_dims"]]}
    requests = {
        tensors: load_client.infer_request("", MODEL, tensor, binary=tensors == "binary")
        for tensors in ("json", "binary")
    }
    values = json.loads(base64.b64decode(requests["json"]["body"]))["inputs"][0]["data"]
    session = ort.InferenceSession(str(generator), providers=["CPUExecutionProvider"])
    expected = session.run(None, {dims["input"]: np.asarray(values, np.float32).reshape(tensor["shape"])})[0]
    return {
        **requests,
        "health": {"method": "GET", "path": HEALTH, "headers": {}, "body": ""},
        "expected": expected.ravel(),
    }


def answer(url: str, request: dict):
    """One request's output values (JSON or binary answer, chunked or not) as a flat float32 array."""
    import numpy as np

    sent = urllib.request.Request(
        url + request["path"],
        data=base64.b64decode(request["body"]),
        headers=request["headers"],
        method=request["method"],
    )
    with urllib.request.urlopen(sent, timeout=30) as response:
        body, header = response.read(), response.headers.get("Inference-Header-Content-Length")
    if header is not None:
        return np.frombuffer(body[int(header) :], "<f4")
    return np.asarray(json.loads(body)["outputs"][0]["data"], np.float32).ravel()


def check_answers(running: Running, requests: dict) -> None:
    """Refuse to time a server whose answers are wrong: a fast wrong answer is no result."""
    import numpy as np

    for tensors in ("json", "binary") if running.binary else ("json",):
        got = answer(running.url, requests[tensors])
        if got.shape != requests["expected"].shape or not np.allclose(got, requests["expected"], atol=1e-4):
            raise RuntimeError(f"wrong {tensors} answer: {got.size} values, expected {requests['expected'].size}")


def measure_server(running: Running, requests: dict, plan: dict, client_core, log, label: str) -> dict:
    """The five cells, each one closed-loop run of serve_load's client."""
    cells = {}
    for cell, tensors, concurrency in CELLS:
        if tensors == "binary" and not running.binary:
            cells[cell] = {"concurrency": concurrency, "skipped": "no binary"}
            continue
        try:
            found = run_client(client_core, running.url, requests[tensors or "health"], concurrency, plan)
        except SystemExit as exc:  # run_client's way to report a failed client
            cells[cell] = {"concurrency": concurrency, "failed": str(exc)[-500:]}
            continue
        good = (found["requests"] - found["errors"]) / found["requests"] if found["requests"] else 0.0
        found["good_rps"] = found["rps"] * good  # a fast error is no answer
        cells[cell] = {"concurrency": concurrency, **found}
        log(
            f"{label:<40} {CELL_TITLES[cell]:<12} {found['rps']:>8.0f} req/s  p50 {found.get('p50_ms', 0):.2f} ms  "
            f"p99 {found.get('p99_ms', 0):.2f} ms  errors {found['errors']}"
        )
    return cells


def measure_one(key: str, ctx: Context, requests: dict, plan: dict, client_core, log) -> dict:
    entry = {"server": key, "label": LABELS[key]}
    try:
        running = STARTERS[key](ctx)
    except Exception as exc:  # any peer may fail to install or start; the others still run
        log(f"{LABELS[key]}: not measured: {exc}")
        return {**entry, "status": "failed", "reason": f"could not start: {exc}"}
    try:
        entry.update(version=running.version, settings=running.settings, note=running.note)
        check_answers(running, requests)
        entry.update(status="ok", cells=measure_server(running, requests, plan, client_core, log, LABELS[key]))
    except Exception as exc:
        log(f"{LABELS[key]}: failed: {exc}")
        entry.update(status="failed", reason=str(exc))
    finally:
        running.stop()
    return entry


def selected(only) -> list:
    keys = [k for name in (only or GROUPS) for k in GROUPS[name]]
    return [k for k in STARTERS if k in keys]  # the table's order


def measure_peers(generator: Path, plan: dict, log, scratch: Path, only=None, install: bool = True) -> dict:
    """Every selected server in turn on ``generator``: versions, settings, cells and the targets."""
    import onnxruntime

    server_core, client_core = cores()
    Path(scratch).mkdir(parents=True, exist_ok=True)
    ctx = Context(Path(generator), Path(scratch), server_core, install, onnxruntime.__version__)
    requests = requests_for(ctx.generator)
    servers = [measure_one(key, ctx, requests, plan, client_core, log) for key in selected(only)]
    return {
        "pinned": server_core is not None,
        "plan": plan,
        "cells": [c for c, _, _ in CELLS],
        "servers": servers,
        "targets": targets(servers),
    }


def write(result: dict, out: Path | None, note: str = "") -> tuple:
    """serve_peers-<machine>-<date>.json, .md and .png in ``out`` (default benchmarks/results), through
    machine.publish: the Markdown on stdout, where it went on stderr."""
    stem = f"serve_peers-{machine.slug(result['machine'])}-{result['machine']['date']}"
    text = markdown(result, stem + ".png")
    return machine.publish("serve_peers", result, text, out, plot=lambda path: plot(result, path), note=note)


def main(argv=None):
    parser = machine.arguments(__doc__, quick="every cell, few requests")
    parser.add_argument(
        "--only",
        type=lambda s: [n.strip() for n in s.split(",") if n.strip()],
        help=f"comma-separated servers to run, of {','.join(GROUPS)} (default: all)",
    )
    parser.add_argument("--run", type=Path, help="an exported VAE run folder (default: a seeded one, made here)")
    parser.add_argument("--no-install", action="store_true", help="never install a peer; one missing is recorded")
    args = parser.parse_args(argv)
    if unknown := [n for n in args.only or () if n not in GROUPS]:
        parser.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(GROUPS)})")
    if args.run and not (args.run / "generator.onnx").is_file():
        parser.error(f"{args.run}: no generator.onnx; run `zoo export {args.run}` first")
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        run = args.run or make_run(Path(scratch) / "vae", "vae")
        result = {
            "benchmark": "serve_peers",
            "quick": args.quick,
            "machine": machine.describe(),
            **measure_peers(
                run / "generator.onnx",
                QUICK if args.quick else FULL,
                log,
                Path(scratch),
                args.only,
                install=not args.no_install,
            ),
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    write(result, args.out, note=f"in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
