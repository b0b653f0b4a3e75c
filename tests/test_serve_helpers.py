"""What the test_serve_* modules share (no tests here): exported models, made once per session
without any dataset, and a real `zoo serve` subprocess on a free port, run with torch blocked.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from export_helpers import NO_TORCH, hand_made_run

_runs: dict = {}  # run folder name -> Path, exported once per test session
BANNER = re.compile(r"serving \d+ models? on (http://\S+)")


def exported_run(tmp_path_factory, folder: str, model_name: str, **config) -> Path:
    """A run folder ``folder`` holding encoder/decoder/generator.onnx of a seeded, untrained model."""
    if folder not in _runs:
        import torch

        import zoo
        from zoo.export.onnx import export_artifacts

        torch.manual_seed(0)
        model = zoo.create_model(model_name, **config)
        run = hand_made_run(tmp_path_factory.mktemp("serve-runs") / folder, model_name, model)
        export_artifacts(run)
        _runs[folder] = run
    return _runs[folder]


def vae_run(tmp_path_factory) -> Path:
    return exported_run(tmp_path_factory, "vae", "vae")


def conv_run(tmp_path_factory) -> Path:
    return exported_run(tmp_path_factory, "conv-ae", "conv-ae")


def plane_run(tmp_path_factory) -> Path:
    """A VAE with a 2-d latent: its decoder gets the page's latent plane."""
    return exported_run(tmp_path_factory, "plane", "vae", latent=2)


class Server:
    """``zoo serve ARGS --port 0`` in a subprocess where torch cannot be imported (unless asked)."""

    def __init__(self, *args, log: Path, env=None, torch_importable: bool = False):
        self.log = Path(log)
        self.stderr = open(self.log, "w")  # a file, not a pipe: the access log must never block the server
        start = [sys.executable, "-m", "zoo"] if torch_importable else [sys.executable, "-c", NO_TORCH]
        self.process = subprocess.Popen(
            [*start, "serve", *map(str, args), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.banner = []
        for line in self.process.stdout:  # model lines, then the line with the address
            self.banner.append(line.rstrip())
            if match := BANNER.search(line):
                self.url = match.group(1)
                break
        else:
            self.process.wait(timeout=30)
            raise RuntimeError(f"zoo serve did not start: {self.log.read_text()}")
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def log_text(self) -> str:
        self.stderr.flush()
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.client.close()
            self.process.stdout.close()
            self.stderr.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stop()


def infer_json(rows: np.ndarray, input_name: str, **extra) -> dict:
    return {
        "inputs": [
            {"name": input_name, "shape": list(rows.shape), "datatype": "FP32", "data": rows.reshape(-1).tolist()}
        ],
        **extra,
    }


def metric(text: str, name: str, **labels) -> float:
    """One sample's value from Prometheus text, 0 if absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name):
            series, value = line.rsplit(" ", 1)
            got = series[len(name) :].strip("{}")
            if ",".join(sorted(got.split(","))) == wanted or (not got and not wanted):
                return float(value)
    return 0.0


def wait_until(condition, timeout: float = 10, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def raw_connection(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_response(sock) -> bytes:
    """One whole HTTP response (head and its Content-Length of body), however the bytes arrive."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"\r\n\r\n"
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def read_all(sock) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
