"""`zoo serve` tried as a hostile or careless client would, against the VAE's three models with the
server's defaults, and what each attempt cost it: the status, the seconds, and the server's resident
memory (RSS) before, at most and after.

- one JSON request of 100,000 rows (an 8 MB body): refused before any work (max batch 1024)
- a JSON body nested 200,000 levels deep
- a burst of large allowed requests (1024-row JSON bodies to the encoder, 1024-row JSON answers from
  the generator), then the RSS once the server is back to small requests: the figure that must stay
  within 50 MB of the steady state
- many idle keep-alive connections, clients trickling their headers and bodies stalled after 4
  bytes, all at once, and the latency of a healthy request meanwhile
- the attempts that once got through, each against a server started with the settings it names
  (serve_hostile_holes): a surrogate id, a body trickled after a 413, clients that never read,
  urllib's large body, a delay of 0 in a repository, a damaged `zoo info` cache, a slow model
  under overload, and 200 clients sending 16 MB bodies at once with the server's RSS

    python -m benchmarks.serving.serve_hostile           # about a minute and a half
    python -m benchmarks.serving.serve_hostile --quick --out /tmp/hostile

Writes benchmarks/results/serve_hostile-<machine>-<date>.json and .md.
"""

import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

from benchmarks import machine
from benchmarks.serving import harness
from benchmarks.serving.harness import make_run
from benchmarks.serving.serve_hostile_holes import all_holes

FULL = {"burst": 10, "idle": 1000, "trickling": 300, "stalled": 200, "probes": 20}
QUICK = {"burst": 2, "idle": 50, "trickling": 20, "stalled": 20, "probes": 5}


class Server(harness.Server):
    """The harness's server with the server's own defaults (no --threads, not pinned), its log in a
    file, and an HTTP client of its own."""

    def __init__(self, run: Path, *args):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log")  # stderr: never a pipe that could fill
        super().__init__([run], None, *args, threads=None, stderr=self.log)
        address = urlsplit(self.url)
        self.host, self.port = address.hostname, address.port
        self.client = httpx.Client(base_url=self.url, timeout=300)

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> int:
        self.client.close()
        return super().stop()


def json_infer(name: str, rows: np.ndarray) -> bytes:
    return json.dumps(
        {"inputs": [{"name": name, "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]}
    ).encode()


def attempt(server, what: str, path: str, body: bytes) -> dict:
    before, started = server.rss_mb(), time.perf_counter()
    response = server.client.post(path, content=body)
    seconds = time.perf_counter() - started
    return {
        "what": what,
        "body_bytes": len(body),
        "status": response.status_code,
        "seconds": round(seconds, 3),
        "answer": response.text[:160] if response.status_code != 200 else f"{len(response.content)} bytes",
        "rss_mb_before": round(before, 1),
        "rss_mb_after": round(server.rss_mb(), 1),
    }


def small_requests(server, count: int = 200) -> None:
    body = json_infer("eps", np.zeros((1, 20), np.float32))
    for _ in range(count):
        server.client.post("/v2/models/vae-generator/infer", content=body)


def burst(server, plan: dict) -> dict:
    """Large allowed requests, then small ones again: where does the RSS settle?"""
    small_requests(server)
    steady = server.rss_mb()
    rng = np.random.default_rng(0)
    images = json_infer("x", rng.random((1024, 1, 28, 28), dtype=np.float32))  # about 16 MB of JSON
    eps = json_infer("eps", rng.standard_normal((1024, 20), dtype=np.float32))  # about 10 MB of JSON back
    peak, started = steady, time.perf_counter()
    for _ in range(plan["burst"]):
        for path, body in (("/v2/models/vae-encoder/infer", images), ("/v2/models/vae-generator/infer", eps)):
            response = server.client.post(path, content=body)
            if response.status_code != 200:
                raise SystemExit(f"Error: a large allowed request failed: {response.text[:200]}")
            peak = max(peak, server.rss_mb())
    seconds = time.perf_counter() - started
    small_requests(server)
    time.sleep(1)
    after = server.rss_mb()
    return {
        "requests": 2 * plan["burst"],
        "encoder_body_mb": round(len(images) / 2**20, 1),
        "seconds": round(seconds, 1),
        "rss_mb_steady": round(steady, 1),
        "rss_mb_peak": round(peak, 1),
        "rss_mb_after": round(after, 1),
        "rss_mb_above_steady": round(after - steady, 1),
    }


def connect(server) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def slow_clients(server, plan: dict) -> dict:
    """Idle, trickling and stalled connections all held open while a healthy client asks."""
    held = []
    try:
        for _ in range(plan["idle"]):
            sock = connect(server)
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(sock)
        for _ in range(plan["trickling"]):
            sock = connect(server)
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHo")
            held.append(sock)
        for _ in range(plan["stalled"]):
            sock = connect(server)
            sock.sendall(b'POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"in')
            held.append(sock)
        body = json_infer("z", np.zeros((1, 20), np.float32))
        latencies, statuses = [], []
        for _ in range(plan["probes"]):
            started = time.perf_counter()
            statuses.append(server.client.post("/v2/models/vae-decoder/infer", content=body).status_code)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
        return {
            **{k: plan[k] for k in ("idle", "trickling", "stalled")},
            "healthy_statuses": sorted(set(statuses)),
            "healthy_ms_median": round(statistics.median(latencies), 2),
            "healthy_ms_max": round(max(latencies), 2),
            "rss_mb": round(server.rss_mb(), 1),
        }
    finally:
        for sock in held:
            sock.close()


def markdown(result: dict) -> str:
    m, b, s = result["machine"], result["burst"], result["slow_clients"]
    lines = [
        f"# zoo serve against hostile clients ({m['cpu']}, {m['cores']} cores, {m['date']})",
        "",
        "The server's defaults: max batch 1024, 64 MiB body and answer limits, 30 s timeout, 2048 connections.",
        "",
        "| what was sent | status | seconds | answer | server RSS before -> after |",
        "|---|---:|---:|---|---|",
    ]
    for a in result["attempts"]:
        lines.append(
            f"| {a['what']} ({a['body_bytes']:,} bytes) | {a['status']} | {a['seconds']} | "
            f"{a['answer'].replace('|', '/')} | {a['rss_mb_before']} -> {a['rss_mb_after']} MB |"
        )
    lines += [
        "",
        f"Burst of {b['requests']} large allowed requests (1024-row JSON, {b['encoder_body_mb']} MB bodies to "
        f"the encoder, 1024-row JSON answers from the generator) in {b['seconds']} s: RSS {b['rss_mb_steady']} MB "
        f"steady, {b['rss_mb_peak']} MB at most, {b['rss_mb_after']} MB after: **{b['rss_mb_above_steady']} MB** "
        "above the steady state.",
        "",
        f"{s['idle']} idle keep-alive connections, {s['trickling']} clients trickling headers and {s['stalled']} "
        f"bodies stalled after 4 bytes, all open: a healthy request answered {s['healthy_statuses']} in "
        f"{s['healthy_ms_median']} ms (median; {s['healthy_ms_max']} ms at most); server RSS {s['rss_mb']} MB.",
        "",
    ]
    return "\n".join(lines + holes_markdown(result["holes"]))


def holes_markdown(h: dict) -> list:
    o, m, t, n = h["slow_model_overload"], h["many_large_bodies"], h["trickle_after_413"], h["never_reading_clients"]
    return [
        "## The attempts that once got through",
        "",
        "| what a client did | what happens now |",
        "|---|---|",
        f'| a JSON request whose `id` is `"\\ud800"` | {h["surrogate_id"]["status"]}: '
        f"`{h['surrogate_id']['answer'][:90]}`; a traceback in the log: {h['surrogate_id']['traceback_in_log']} |",
        f"| `Content-Length: 10000000`, then a byte every 0.5 s after the 413 (`--timeout 2`) | {t['status']} "
        f"with `Connection: close` ({t['connection_close']}); the server closed the connection after "
        f"{t['closed_after_s']} s |",
        f"| `--max-connections 4`: four clients send three 1024-row requests each and never read (`--timeout 2`) | "
        f"a new client got {n['first_status']} at first, {n['status']} after {n['served_after_s']} s |",
        f"| urllib posting a {h['urllib_large_body']['body_bytes'] / 1e6:.0f} MB body, 3 tries | "
        f"{'; '.join(h['urllib_large_body']['seen'])} |",
        f"| `zoo export --repository --max-delay-ms 0`, then `zoo serve` of it | config.pbtxt: "
        f"`{' '.join(h['delay_zero']['config_pbtxt'])}`; served: {', '.join(h['delay_zero']['served'])} |",
        "| a `zoo info` cache whose entries have the wrong types | "
        f"exit code {h['info_cache_wrong_types']['exit_code']} |",
        f"| a model taking {o['call_s']} s a call, `--max-batch 1 --max-queue 4 --timeout {o['timeout_s']}`, "
        f"clients in a closed loop | {o['counts']}: {o['answered_of_admitted']:.0%} of admitted requests "
        f"answered, {o['calls']:.0f} calls run; SIGTERM drained in {o['sigterm_drain_s']} s |",
        f"| {m['clients']} clients each sending a {m['body_mb']} MB JSON body (1024 rows) at once | {m['statuses']} "
        f"in {m['seconds']} s; server RSS {m['rss_mb_before']} MB before, {m['rss_mb_peak']} MB at most "
        f"(the memory budget: 1024 MiB), {m['rss_mb_after']} MB after |",
        "",
        *bounds_markdown(h),
    ]


def bounds_markdown(h: dict) -> list:
    rows = ["## What a client can make the server hold", "", "| what a client did | what happened |", "|---|---|"]
    for key, what in (("endless_url", "`GET /` then URL"), ("endless_header", "`GET / HTTP/1.1`, a header, its value")):
        e = h[key]
        rows.append(
            f"| {what}, up to {e['mb_planned']} MB, 64 KiB at a time (`--timeout 5`), while another client "
            f"checks health every 10 ms | `{e['first_line']}` after {e['seconds']} s, {e['mb_sent']} MB sent; "
            f"health checks {e['health_ms_median']} ms median, **{e['health_ms_max']} ms** at most; RSS "
            f"{e['rss_mb_before']} -> {e['rss_mb_peak']} at most -> {e['rss_mb_after']} MB |"
        )
    u, b = h["unread_answers"], h["stalled_body"]
    rows += [
        f"| {u['clients']} clients, 30 ms apart, each asking vae-decoder for 1,024 rows (an {u['answer_mb']} MB "
        f"JSON answer) and never reading (`--max-memory-mb 128 --timeout 20`) | {u['statuses']}; a new request "
        f"meanwhile: {u['late_request']} in {u['late_request_s']} s; RSS {u['rss_mb_before']} MB before, "
        f"**{u['rss_mb_peak']} MB** at most, {u['rss_mb_after']} MB once they left, when a new request got "
        f"{u['after_they_left']} |",
        f"| a body that stops after 4 bytes (`--timeout 2`) | {b['status']} after {b['seconds']} s |",
        "",
    ]
    return rows


def main(argv=None):
    parser = machine.arguments(__doc__, quick="fewer requests and connections")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as scratch:
        server = Server(make_run(Path(scratch) / "vae", "vae"))
        try:
            small_requests(server)
            depth = 200_000
            attempts = [
                attempt(
                    server,
                    "JSON request of 100,000 rows",
                    "/v2/models/vae-generator/infer",
                    json_infer("eps", np.zeros((100_000, 20), np.float32)),
                ),
                attempt(
                    server, f"JSON nested {depth:,} deep", "/v2/models/vae-generator/infer", b"[" * depth + b"]" * depth
                ),
            ]
            result = {
                "benchmark": "serve_hostile",
                "quick": args.quick,
                "plan": plan,
                "machine": machine.describe(),
                "attempts": attempts,
                "burst": burst(server, plan),
                "slow_clients": slow_clients(server, plan),
            }
        finally:
            server.stop()
        result["holes"] = all_holes(Server, Path(scratch) / "vae", args.quick)
    text = markdown(result)
    machine.publish("serve_hostile", result, text, args.out)


if __name__ == "__main__":
    main()
