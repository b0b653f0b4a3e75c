"""`zoo serve --workers N`: requests/s and latency of batch-1 requests to the VAE generator, JSON and
binary tensors, for several worker counts, in one run with the same load client.

Where the machine has cores for it, the server gets N cores of its own and the load clients (one
or more processes, since one Python client tops out near one core) the next ones, each pinned with
taskset. Where it has not (2 cores and 2 workers), server and client share every core, and the
results say so: the client's own cost then comes out of the server's.

    python -m benchmarks.serving.serve_workers              # 1, 2, 4 and 8 workers (those that fit)
    python -m benchmarks.serving.serve_workers --workers 1 2 --clients 1 --quick --out /tmp/w

serve_load runs the same measurement for 1 and 2 workers as part of its full run.
Writes benchmarks/results/serve_workers-<machine>-<date>.json and .md.
"""

import sys
import tempfile
import time
from pathlib import Path

from benchmarks import machine
from benchmarks.serving import load_client
from benchmarks.serving.harness import FULL, QUICK, Server, allowed_cores, can_pin, make_run, run_clients

MODEL = "vae-generator"


def placement(workers: int, clients: int) -> tuple:
    """(server cores, [client core per client process], shared?) as taskset lists."""
    if not can_pin():
        return None, [None] * clients, True
    allowed = allowed_cores()
    if len(allowed) >= workers + clients:
        server = ",".join(map(str, allowed[:workers]))
        return server, [str(allowed[workers + i]) for i in range(clients)], False
    return None, [None] * clients, True  # not enough cores to keep them apart: everything shares


def measure_workers(vae_run: Path, counts, clients: int, plan: dict, log) -> list:
    """One row per (workers, tensors, concurrency)."""
    rows = []
    for workers in counts:
        server_cores, client_cores, shared = placement(workers, clients)
        server = Server([vae_run], server_cores, "--workers", workers)
        try:
            time.sleep(1 + 0.5 * workers)  # every worker loads its models before it accepts
            shape = load_client.input_shape(server.url, MODEL)
            for tensors in ("json", "binary"):
                request = load_client.infer_request(server.url, MODEL, shape, binary=tensors == "binary")
                for concurrency in plan["workers_concurrency"]:
                    cell = run_clients(client_cores, server.url, request, concurrency, plan)
                    cell.update(
                        workers=workers,
                        tensors=tensors,
                        server_cores=server_cores or "all",
                        client_cores=",".join(c for c in client_cores if c) or "all",
                        shared=shared,
                    )
                    rows.append(cell)
                    log(
                        f"workers {workers} {tensors:<6} c={cell['concurrency']:<4} {cell['rps']:>8.0f} req/s  "
                        f"p50 {cell['p50_ms']:.2f} ms  p99 {cell['p99_ms']:.2f} ms  errors {cell['errors']}"
                        f"{'  (server and client share the cores)' if shared else ''}"
                    )
        finally:
            server.stop()
    return rows


def markdown_rows(rows: list) -> list:
    """The table of worker counts, each with its speed-up over one worker in the same cell."""
    one = {(r["tensors"], r["concurrency"]): r["rps"] for r in rows if r["workers"] == 1}
    lines = [
        "| workers | server cores | client cores | tensors | concurrency | req/s | p50 ms | p99 ms | errors "
        "| vs 1 worker |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = one.get((r["tensors"], r["concurrency"]))
        ratio = f"{r['rps'] / base:.2f}x" if base else ""
        lines.append(
            f"| {r['workers']} | {r['server_cores']} | {r['client_cores']} | {r['tensors']} | "
            f"{r['concurrency']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} "
            f"| {ratio} |"
        )
    return lines


def main(argv=None):
    parser = machine.arguments(__doc__, quick="few requests")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4, 8], help="worker counts to measure")
    parser.add_argument(
        "--clients", type=int, default=None, help="load client processes (default: 1 on up to 4 cores, else 4)"
    )
    args = parser.parse_args(argv)
    cores = len(allowed_cores())
    clients = args.clients or (1 if cores <= 4 else 4)
    counts = [n for n in args.workers if n == 1 or n + clients <= max(cores, 2)] or [1]
    plan = QUICK if args.quick else FULL
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        rows = measure_workers(make_run(Path(scratch) / "vae", "vae"), counts, clients, plan, log)
    result = {
        "benchmark": "serve_workers",
        "quick": args.quick,
        "plan": plan,
        "machine": machine.describe(),
        "clients": clients,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    m = result["machine"]
    text = "\n".join(
        [
            f"# zoo serve --workers N ({m['cpu']}, {m['cores']} cores, {m['date']})",
            "",
            f"Batch-1 requests to {MODEL}, onnxruntime with one intra-op thread per worker, "
            f"{clients} load client process(es). Rows marked 'all' ran with server and client "
            "sharing every core.",
            "",
            *markdown_rows(rows),
            "",
        ]
    )
    machine.publish("serve_workers", result, text, args.out, note=f"in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
