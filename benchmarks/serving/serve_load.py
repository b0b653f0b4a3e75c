"""Load on `zoo serve`: requests/s and latency for batch-1 requests to the VAE generator and the
conv-ae decoder, at concurrency 1, 8, 64 and 256, with JSON and binary tensors, micro-batching on
and off; beside them the floors measured in the same run: a hello-world route on the same server
stack (GET /v2/health/live), in-process onnxruntime on the same file, and a model that does no work
(the generator's interface, a graph that only pads and reshapes) served through the same path. Then
overload: 4x the queue limit, with the 503s' latency and the server's resident memory.

The server runs as a subprocess and the load comes from another process (a closed loop of
keep-alive connections, bounded in count and time, on loopback), each pinned to its own core with
taskset where there are two. Writes benchmarks/results/serve_load-<machine>-<date>.json, .md
(its first table pastes into the README) and .png.

    python -m benchmarks.serving.serve_load                # the full run: about a minute on 2 cores
    python -m benchmarks.serving.serve_load --quick --out /tmp/serve-load   # a smoke run, every path once
    python -m benchmarks.serving.serve_load --peers        # and Triton, KServe and MLServer beside it
                                                           # (benchmarks.serving.peers.serve_peers)
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import machine
from benchmarks.serving import load_client
from benchmarks.serving.harness import FULL, QUICK, Server, client_process, cores, make_run, run_client, run_inprocess
from benchmarks.serving.peers import serve_peers
from benchmarks.serving.serve_load_report import markdown, plot, targets
from benchmarks.serving.serve_workers import measure_workers

MODELS = (("vae", "generator"), ("conv-ae", "decoder"))  # (architecture, part) pairs to load
NO_WORK = "no-work"  # the floor model's folder, so it is served as no-work-generator


def make_no_work_model(generator: Path, folder: Path) -> Path:
    """``folder/generator.onnx``: the generator's interface, names and zoo metadata, but a graph that
    only pads its input with zeros and reshapes it. Served beside the real models, it measures
    everything a request costs the server (HTTP, parsing, batching, the inference thread, an
    onnxruntime call, encoding) except the model's own work."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(generator)
    (source,), (target,) = model.graph.input, model.graph.output
    width = source.type.tensor_type.shape.dim[1].dim_value
    out_dims = [d.dim_value for d in target.type.tensor_type.shape.dim[1:]]
    pixels = 1
    for dim in out_dims:
        pixels *= dim
    graph = helper.make_graph(
        [
            helper.make_node("Pad", [source.name, "pads"], ["padded"]),
            helper.make_node("Reshape", ["padded", "shape"], [target.name]),
        ],
        "no_work",
        [source],
        [target],
        [
            helper.make_tensor("pads", TensorProto.INT64, [4], [0, 0, 0, pixels - width]),
            helper.make_tensor("shape", TensorProto.INT64, [len(out_dims) + 1], [-1, *out_dims]),
        ],
    )
    no_work = helper.make_model(graph, opset_imports=model.opset_import)
    no_work.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(no_work)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(no_work, folder / "generator.onnx")
    return folder


def measure_cells(server, model: str, batching: str, plan: dict, client_core, log) -> list:
    """``model`` with JSON and binary tensors at each concurrency: one cell each."""
    cells = []
    shape = load_client.input_shape(server.url, model)
    for tensors in ("json", "binary"):
        request = load_client.infer_request(server.url, model, shape, binary=tensors == "binary")
        for concurrency in plan["concurrency"]:
            before = server.batch_totals(model)
            cell = run_client(client_core, server.url, request, concurrency, plan)
            after = server.batch_totals(model)
            calls = after[0] - before[0]
            cell.update(
                model=model,
                tensors=tensors,
                batching=batching,
                concurrency=concurrency,
                mean_batch=(after[1] - before[1]) / calls if calls else None,
            )
            cells.append(cell)
            log(
                f"{model:<17} {tensors:<6} batching {batching:<3} c={concurrency:<4} {cell['rps']:>8.0f} "
                f"req/s  p50 {cell['p50_ms']:.2f} ms  p99 {cell['p99_ms']:.2f} ms  errors {cell['errors']}  "
                f"mean batch {cell['mean_batch'] or 0:.1f}"
            )
    return cells


def measure(runs: dict, plan: dict, log, scratch: Path) -> dict:
    server_core, client_core = cores()
    result = {"pinned": server_core is not None, "cells": [], "hello": [], "no_work": [], "inprocess": {}}
    for arch, part in MODELS:
        result["inprocess"][f"{arch}-{part}"] = run_inprocess(
            server_core, runs[arch] / f"{part}.onnx", plan["inprocess_calls"]
        )
    no_work = make_no_work_model(runs["vae"] / "generator.onnx", scratch / NO_WORK)
    result["inprocess"][f"{NO_WORK}-generator"] = run_inprocess(
        server_core, no_work / "generator.onnx", plan["inprocess_calls"]
    )
    for batching, options in (("on", ()), ("off", ("--max-batch", "1"))):
        server = Server([*runs.values(), no_work], server_core, *options)
        try:
            if batching == "on":
                for concurrency in plan["concurrency"]:
                    cell = run_client(client_core, server.url, load_client.hello_request(), concurrency, plan)
                    result["hello"].append({"concurrency": concurrency, **cell})
                    log(f"hello-world  c={concurrency:<4} {cell['rps']:>8.0f} req/s  p50 {cell['p50_ms']:.2f} ms")
                result["no_work"] = measure_cells(server, f"{NO_WORK}-generator", batching, plan, client_core, log)
            for arch, part in MODELS:
                result["cells"] += measure_cells(server, f"{arch}-{part}", batching, plan, client_core, log)
        finally:
            server.stop()
    result["overload"] = overload(runs, plan, server_core, client_core, log)
    result["workers"] = measure_workers(runs["vae"], (1, 2), 1, plan, log)
    return result


def overload(runs: dict, plan: dict, server_core, client_core, log) -> dict:
    """4x the queue limit on the conv-ae decoder without micro-batching: the excess must be refused
    at once and memory must not grow with the refused load."""
    queue = plan["queue"]
    server = Server([runs["conv-ae"]], server_core, "--max-queue", queue, "--max-batch", "1")
    try:
        model = "conv-ae-decoder"
        request = load_client.infer_request(server.url, model, load_client.input_shape(server.url, model), binary=True)
        rss = [server.rss_mb()]
        job = client_process(client_core)
        job.stdin.write(
            json.dumps(
                {
                    "url": server.url,
                    **request,
                    "concurrency": 4 * queue,
                    "warmup": 0,
                    "requests": 10**9,
                    "seconds": plan["overload_seconds"],
                }
            )
        )
        job.stdin.close()
        while job.poll() is None:
            rss.append(server.rss_mb())
            time.sleep(0.1)
        cell = json.loads(job.stdout.read())
        rss.append(server.rss_mb())
    finally:
        server.stop()
    cell.update(queue=queue, concurrency=4 * queue, rss_mb_start=rss[0], rss_mb_max=max(rss), rss_mb_end=rss[-1])
    log(
        f"overload c={4 * queue}: {cell['status_counts']}; 503 p99 {cell.get('p99_ms_503', float('nan')):.1f} ms; "
        f"server RSS {rss[0]:.0f} -> max {max(rss):.0f} MB"
    )
    return cell


def main(argv=None):
    parser = machine.arguments(__doc__, quick="every code path, few requests")
    parser.add_argument(
        "--runs",
        nargs=2,
        type=Path,
        metavar=("VAE_RUN", "CONV_AE_RUN"),
        help="exported run folders to serve (default: seeded models exported to a temporary folder)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also serve the VAE generator through Triton, KServe and MLServer (serve_peers; "
        "installs KServe and MLServer into .peers/ on first use)",
    )
    args = parser.parse_args(argv)
    for run in args.runs or ():
        if not (run / "generator.onnx").is_file() and not (run / "decoder.onnx").is_file():
            parser.error(f"{run}: no exported files; run `zoo export {run}` first")
    plan = QUICK if args.quick else FULL
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        runs = (
            dict(zip([arch for arch, _ in MODELS], args.runs))
            if args.runs
            else {arch: make_run(Path(scratch) / arch, arch) for arch, _ in MODELS}
        )
        result = {
            "benchmark": "serve_load",
            "quick": args.quick,
            "plan": plan,
            "machine": machine.describe(),
            **measure(runs, plan, log, Path(scratch)),
        }
        if args.peers:
            result["peers"] = measure_peers_here(runs["vae"], args, log, Path(scratch))
    result["targets"] = targets(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    machine.publish(
        "serve_load",
        result,
        markdown(result),
        args.out,
        plot=lambda path: plot(result, path),
        note=f"in {result['seconds']:.0f} s; read the .md (its first table pastes into the README)",
    )
    if args.peers:
        peers = {"benchmark": "serve_peers", "quick": args.quick, "machine": result["machine"], **result["peers"]}
        serve_peers.write(peers, args.out)


def measure_peers_here(vae_run: Path, args, log, scratch: Path) -> dict:
    """serve_peers' measurement on the same VAE run, in this run (its own files are written too)."""
    return serve_peers.measure_peers(
        vae_run / "generator.onnx", serve_peers.QUICK if args.quick else serve_peers.FULL, log, scratch / "peers"
    )


if __name__ == "__main__":
    main()
