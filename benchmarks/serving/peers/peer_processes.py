"""The process plumbing of the peer servers serve_peers measures: free loopback ports, starting a
pinned server and waiting for its health route, stopping it, and installing a peer into its own
venv (or site-packages folder) under .peers/ once."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.serving.harness import ROOT, pinned

PEERS_DIR = ROOT / ".peers"
HEALTH = "/v2/health/ready"
START_SECONDS = 120  # model loading on a busy 2-core machine: Triton's Python stub and MLServer take seconds


@dataclass
class Context:
    generator: Path  # the exported generator.onnx every server serves
    scratch: Path
    core: object  # taskset core for servers, or None
    install: bool = True  # whether missing peers may be installed (never in the test suite)
    ort_version: str = ""  # pinned in every Python peer, so they all run the onnxruntime zoo serve runs


# -- starting processes ----------------------------------------------------------------------------


def free_port(count: int = 1) -> int:
    """A port P with P .. P+count-1 all free on 127.0.0.1 (Triton takes HTTP, gRPC and metrics ports)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + HEALTH, timeout=2) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def launch(ctx: Context, name: str, command: list, url: str, env: dict | None = None, cwd=None) -> subprocess.Popen:
    """Start ``command`` pinned to the server core, its output in a log file, and wait until ``url``
    answers its health route; a process that exits or never gets ready raises with its log's tail."""
    log_path = ctx.scratch / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            pinned(ctx.core, command), stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **(env or {})}
        )
    deadline = time.monotonic() + START_SECONDS
    while not ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"{name} did not get ready (exit {process.returncode}): " + " | ".join(tail))
        time.sleep(0.2)
    return process


def stop_process(process: subprocess.Popen, grace: float = 30) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


# -- installing peers ------------------------------------------------------------------------------


def pip_install(ctx: Context, name: str, requirements: list, site_packages: bool = False) -> Path:
    """.peers/<name>: a venv (or, with ``site_packages``, a plain folder .peers/<name>/site-packages)
    with ``requirements``. Skipped when the folder already holds exactly these requirements; refused
    where installing is off."""
    folder = PEERS_DIR / name
    marker = folder / "zoo-peer-requirements.json"
    if marker.is_file() and json.loads(marker.read_text()) == requirements:
        return folder
    if not ctx.install:
        raise RuntimeError(f"{folder} is not installed and installing is off (run without --no-install)")
    folder.mkdir(parents=True, exist_ok=True)
    if not site_packages:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True, capture_output=True)
        pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
    else:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--target", str(folder / "site-packages")]
    done = subprocess.run([*pip, *requirements], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} failed: {done.stderr.strip()[-1500:]}")
    marker.write_text(json.dumps(requirements))
    return folder


def venv_versions(python: Path, packages: tuple) -> dict:
    code = (
        "import json, sys, importlib.metadata as m\n"
        "found = {d.metadata['Name'].lower(): d.version for d in m.distributions()}\n"
        "print(json.dumps({p: found.get(p) for p in sys.argv[1:]}))"
    )
    return json.loads(
        subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True, check=True).stdout
    )


def dist_version(site_packages: Path, package: str) -> str | None:
    found = sorted(site_packages.glob(f"{package}-*.dist-info"))
    return found[-1].name[len(package) + 1 : -len(".dist-info")] if found else None
