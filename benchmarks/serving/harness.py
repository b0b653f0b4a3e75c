"""What the serving benchmarks share: the cores they may pin to, `zoo serve` as a subprocess (Server),
the load client run as its own pinned processes, the run every benchmark serves, and serve_load's
plans (FULL, QUICK), which serve_workers runs too. The scripts import this module; it imports none
of them, and nothing from zoo until a function needs it (serve_load_compare runs it against an older
zoo).

The load client itself is benchmarks/serving/load_client.py, started here as
``python -m benchmarks.serving.load_client`` from the repository's root.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: where `python -m benchmarks...` runs from
LOAD_CLIENT = "benchmarks.serving.load_client"

# serve_load's plans: the full run and the smoke run (--quick); serve_workers runs the same.
FULL = {
    "concurrency": (1, 8, 64, 256),
    "requests": 4000,
    "seconds": 8.0,
    "queue": 64,
    "overload_seconds": 8.0,
    "inprocess_calls": 5000,
    "workers_concurrency": (64, 256),
}
QUICK = {
    "concurrency": (1, 8),
    "requests": 40,
    "seconds": 2.0,
    "queue": 4,
    "overload_seconds": 1.0,
    "inprocess_calls": 50,
    "workers_concurrency": (8,),
}


# -- cores -----------------------------------------------------------------------------------------


def allowed_cores() -> list:
    """The cores this process may run on, in order (its affinity, not the machine's count): the one
    place the benchmarks ask; len() of it is the core count they plan with."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def can_pin() -> bool:
    """Whether there are two cores to keep apart and taskset to do it."""
    return len(allowed_cores()) >= 2 and shutil.which("taskset") is not None


def cores() -> tuple:
    """(server core, client core) as taskset arguments, or (None, None) where pinning is impossible."""
    if not can_pin():
        return None, None
    allowed = allowed_cores()
    return str(allowed[0]), str(allowed[1])


def pinned(core, command: list) -> list:
    """``command`` under ``taskset -c core``; unchanged where ``core`` is None."""
    return (["taskset", "-c", core] if core is not None else []) + command


# -- the server ------------------------------------------------------------------------------------


class Server:
    """`zoo serve RUN... --port 0 --quiet` in a subprocess, pinned to ``core`` (None: not pinned), with
    ``--threads threads`` (None: the server's default) and any further options; ``url`` once it serves.
    ``stderr`` is where the server's own log goes (default: this process's)."""

    def __init__(self, runs: list, core=None, *options, threads: int | None = 1, stderr=None):
        command = [
            sys.executable,
            "-m",
            "zoo",
            "serve",
            *map(str, runs),
            "--port",
            "0",
            "--quiet",
            *(["--threads", str(threads)] if threads is not None else []),
            *map(str, options),
        ]
        self.process = subprocess.Popen(pinned(core, command), stdout=subprocess.PIPE, stderr=stderr, text=True)
        for line in self.process.stdout:
            if match := re.search(r"on (http://\S+)", line):
                self.url = match.group(1)
                return
        raise RuntimeError("zoo serve did not start")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics") as response:
            return response.read().decode()

    def batch_totals(self, model: str) -> tuple:
        """(calls, rows) the server has run for ``model`` so far."""
        values = dict(
            re.findall(rf'zoo_serve_batch_rows_(count|sum){{model="{re.escape(model)}"}} (\S+)', self.metrics())
        )
        return float(values.get("count", 0)), float(values.get("sum", 0))

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


def make_run(folder: Path, name: str) -> Path:
    """The inference benchmark's run of ``name`` (seeded weights: serving speed does not depend on
    training), exported."""
    from zoo.export.bench.preparation import make_run as untrained_run
    from zoo.export.onnx import export_artifacts

    export_artifacts(untrained_run(folder, name))
    return folder


# -- the load clients ------------------------------------------------------------------------------


def client_process(core, *args) -> subprocess.Popen:
    """The load client in its own process, pinned to ``core``, its job to be written to its stdin."""
    return subprocess.Popen(
        pinned(core, [sys.executable, "-m", LOAD_CLIENT, *args]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def run_client(core, url: str, request: dict, concurrency: int, plan: dict) -> dict:
    """One closed-loop measurement, in its own (pinned) process; the client's summary dict."""
    job = {
        "url": url,
        **request,
        "concurrency": concurrency,
        "requests": plan["requests"],
        "seconds": plan["seconds"],
        "warmup": min(plan["requests"] // 4, 2 * concurrency),
    }
    return _json_from(pinned(core, [sys.executable, "-m", LOAD_CLIENT]), json.dumps(job), plan["seconds"] * 4 + 60)


def run_clients(cores: list, url: str, request: dict, concurrency: int, plan: dict) -> dict:
    """Closed-loop load from len(cores) client processes at once, ``concurrency`` connections in all."""
    share = max(1, concurrency // len(cores))
    job = json.dumps(
        {
            "url": url,
            **request,
            "concurrency": share,
            "requests": plan["requests"],
            "seconds": plan["seconds"],
            "warmup": min(plan["requests"] // 4, 2 * share),
        }
    )
    processes = [client_process(core) for core in cores]
    for process in processes:
        process.stdin.write(job)
        process.stdin.close()
    results = []
    for process in processes:
        out = process.stdout.read()
        if process.wait(timeout=plan["seconds"] * 4 + 60) != 0:
            raise SystemExit(f"Error: the load client failed: {out[-2000:]}")
        results.append(json.loads(out))
    return {
        "rps": sum(r["rps"] for r in results),
        "p50_ms": statistics.median(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "clients": len(results),
        "concurrency": share * len(results),
    }


def run_inprocess(core, onnx_file: Path, calls: int) -> dict:
    """Batch-1 latency of the same file in onnxruntime, one thread, pinned where the server runs."""
    command = [sys.executable, "-m", LOAD_CLIENT, "--inprocess", str(Path(onnx_file).resolve()), str(calls)]
    return _json_from(pinned(core, command), "", 600)


def _json_from(command: list, stdin: str, timeout: float) -> dict:
    out = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"Error: {' '.join(command)} failed:\n{out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)
