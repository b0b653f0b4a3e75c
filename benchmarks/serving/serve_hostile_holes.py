"""The attempts that once got through `zoo serve`, each repeated with what it costs now (used by
serve_hostile; every function returns one JSON-able record):

- a request whose id is a lone surrogate escape ("\\ud800");
- headers declaring a 10 MB body, then one byte every 0.5 s after the 413 (--timeout 2);
- four clients (--max-connections 4, --timeout 2) each sending three 1024-row requests and never
  reading: how long until a new client is served;
- Python's urllib posting a 10 MB body over the max batch: does it see the 413?
- `zoo export --repository --max-delay-ms 0`, then `zoo serve` of it: which delay it serves;
- a `zoo info` cache entry of the right keys and the wrong types;
- a model slow enough to overrun (about 0.37 s a call; --max-batch 1 --max-queue 4 --timeout 1.5)
  under 24 clients in a closed loop: the answers, the calls, and how long SIGTERM takes to drain;
- 200 clients each sending a 1024-row JSON body (16 MB) at once: the answers and the server's RSS;
- a body that stops after 4 bytes (--timeout 2): the status;
- the attempts on its bounds, in serve_hostile_bounds (an endless head, answers never read).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.serving.serve_hostile_bounds import bounds, infer_body, read_head

TIMEOUT = 2.0


def surrogate_id(server) -> dict:
    body = infer_body("z", np.zeros((1, 20), np.float32)).replace(b'{"inputs"', b'{"id": "\\ud800", "inputs"')
    response = server.client.post("/v2/models/vae-decoder/infer", content=body)
    return {"status": response.status_code, "answer": response.text[:160]}


def trickle_after_413(server) -> dict:
    """Seconds from the 413 until the server has closed the connection (a send fails)."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        head = read_head(sock)
        started = time.monotonic()
        while time.monotonic() - started < 20:
            try:
                sock.sendall(b"x")
            except OSError:
                break
            time.sleep(0.5)
        return {
            "status": int(head.split()[1]),
            "connection_close": b"connection: close" in head.lower(),
            "closed_after_s": round(time.monotonic() - started, 2),
        }


def never_reading_clients(server) -> dict:
    """Four clients fill --max-connections 4 with requests whose answers they never read."""
    body = infer_body("z", np.zeros((1024, 20), np.float32))
    request = b"POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    stuck = []
    server.client.close()  # its keep-alive connection would take one of the four places
    try:
        for _ in range(4):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request * 3)
            stuck.append(sock)
        started = time.monotonic()
        first = None
        while time.monotonic() - started < 20:
            with socket.create_connection((server.host, server.port), timeout=10) as probe:
                probe.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status = int(read_head(probe).split()[1])
            first = first or status
            if status == 200:
                break
            time.sleep(0.1)
        return {"first_status": first, "served_after_s": round(time.monotonic() - started, 2), "status": status}
    finally:
        for sock in stuck:
            sock.close()


def urllib_large_body(server, tries: int = 3) -> dict:
    body = infer_body("z", np.zeros((1, 20), np.float32)).replace(b"[0.0", b"[" + b"0.1, " * 2_000_000 + b"0.0")
    seen = []
    for _ in range(tries):
        request = urllib.request.Request(f"{server.url}/v2/models/vae-decoder/infer", data=body, method="POST")
        try:
            urllib.request.urlopen(request, timeout=60)
            seen.append("200")
        except urllib.error.HTTPError as exc:
            seen.append(f"{exc.code}: {json.loads(exc.read())['error'][:60]}")
        except OSError as exc:
            seen.append(type(exc).__name__)
    return {"body_bytes": len(body), "seen": seen}


def delay_zero(run: Path, scratch: Path) -> dict:
    repository = scratch / "repository"
    subprocess.run(
        [sys.executable, "-m", "zoo", "export", str(run), "--repository", str(repository), "--max-delay-ms", "0"],
        check=True,
        capture_output=True,
    )
    written = (repository / f"{run.name}-generator" / "config.pbtxt").read_text()
    serve = subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", str(repository), "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    banner = []
    for line in serve.stdout:
        banner.append(line.strip())
        if "serving" in line:
            break
    serve.terminate()
    serve.wait(timeout=60)
    delays = sorted({part.strip() for line in banner for part in line.split(",") if part.strip().startswith("delay")})
    return {"config_pbtxt": [line.strip() for line in written.splitlines() if "delay" in line], "served": delays}


def info_cache_wrong_types(scratch: Path) -> dict:
    """Every entry of the cache turned to the wrong types, then `zoo info vae` again."""
    env = {**os.environ, "XDG_CACHE_HOME": str(scratch / "cache")}
    subprocess.run([sys.executable, "-m", "zoo", "info", "vae"], env=env, check=True, capture_output=True)
    cache = scratch / "cache" / "zoo" / "model-facts.json"
    entries = json.loads(cache.read_text())
    broken = {
        key: {field: "wrong" for field in value} if isinstance(value, dict) else "wrong"
        for key, value in entries.items()
    }
    cache.write_text(json.dumps(broken))
    again = subprocess.run([sys.executable, "-m", "zoo", "info", "vae"], env=env, capture_output=True, text=True)
    return {"exit_code": again.returncode, "stderr": again.stderr.strip()[-200:]}


def slow_model_overload(server_factory, generator: Path, scratch: Path, quick: bool) -> dict:
    from benchmarks.serving.slow_model import calibrated, overrun  # onnx and onnxruntime: only when run

    folder = scratch / "slow"
    _, call = calibrated(generator, folder, 0.1 if quick else 0.37)
    timeout = call * 1.5 / 0.37  # the measured case: 0.37 s calls and a 1.5 s timeout
    server = server_factory(
        folder, "--max-batch", "1", "--max-queue", "4", "--timeout", f"{timeout:.3f}", "--threads", "1"
    )
    try:
        counts = overrun(server.url, clients=8 if quick else 24, seconds=1.5 if quick else 8)
        calls = _metric(server.client.get("/metrics").text, "zoo_serve_batch_rows_count")
        held = [threading.Thread(target=overrun, args=(server.url, 4, 0.1))]
        for thread in held:
            thread.start()
        time.sleep(0.2)
    finally:
        started = time.monotonic()
        server.stop()
        drained = time.monotonic() - started
    for thread in held:
        thread.join()
    admitted = counts.get("200", 0) + counts.get("504", 0)
    return {
        "call_s": round(call, 3),
        "timeout_s": round(timeout, 3),
        "counts": counts,
        "calls": calls,
        "answered_of_admitted": round(counts.get("200", 0) / max(admitted, 1), 3),
        "sigterm_drain_s": round(drained, 2),
    }


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def many_large_bodies(server, clients: int) -> dict:
    """``clients`` threads each send a 1024-row JSON body to the encoder at once: the memory budget
    admits what fits and refuses the rest at once."""
    body = infer_body("x", np.random.default_rng(0).random((1024, 1, 28, 28), dtype=np.float32))
    head = b"POST /v2/models/vae-encoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    statuses, lock, rss = [], threading.Lock(), [server.rss_mb()]
    start = threading.Barrier(clients + 1)

    def client():
        status = "error"
        try:
            with socket.create_connection((server.host, server.port), timeout=120) as sock:
                start.wait()
                sock.sendall(head % len(body) + body)
                status = read_head(sock).split()[1].decode()
        except (OSError, IndexError) as exc:
            status = type(exc).__name__
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        rss.append(server.rss_mb())
        time.sleep(0.05)
    seconds = time.monotonic() - started
    time.sleep(1)
    return {
        "clients": clients,
        "body_mb": round(len(body) / 2**20, 1),
        "seconds": round(seconds, 1),
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "rss_mb_before": round(rss[0], 1),
        "rss_mb_peak": round(max(rss), 1),
        "rss_mb_after": round(server.rss_mb(), 1),
    }


def stalled_body(server) -> dict:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b'POST /v2/models/vae-decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"in')
        started = time.monotonic()
        head = read_head(sock)
        return {"status": int(head.split()[1]), "seconds": round(time.monotonic() - started, 2)}


def all_holes(server_factory, run: Path, quick: bool) -> dict:
    """Every attempt above, each against a server started for it with the settings it names."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        plain = server_factory(run)
        try:
            result = {
                "surrogate_id": surrogate_id(plain),
                "urllib_large_body": urllib_large_body(plain),
                "many_large_bodies": many_large_bodies(plain, 6 if quick else 200),
            }
        finally:
            plain.stop()
        result["surrogate_id"]["traceback_in_log"] = "Traceback" in plain.log_text()
        short = server_factory(run, "--timeout", TIMEOUT, "--max-connections", 4)
        try:
            result["trickle_after_413"] = trickle_after_413(short)
            result["stalled_body"] = stalled_body(short)
            result["never_reading_clients"] = never_reading_clients(short)
        finally:
            short.stop()
        result["delay_zero"] = delay_zero(run, scratch)
        result["info_cache_wrong_types"] = info_cache_wrong_types(scratch)
        result["slow_model_overload"] = slow_model_overload(server_factory, run / "generator.onnx", scratch, quick)
    return {**result, **bounds(server_factory, run, quick)}
