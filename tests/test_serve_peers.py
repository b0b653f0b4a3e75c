"""`python -m benchmarks.serving.peers.serve_peers --quick` runs end to end for zoo serve and Triton's
onnxruntime backend, and writes the JSON, Markdown and plot; the load client reads chunked answers
(KServe's binary ones). No timing is asserted, and nothing is installed here: KServe and MLServer
(network, minutes) are left to the benchmark's own runs."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve_helpers import vae_run

from benchmarks.serving import load_client
from benchmarks.serving.peers import peer_processes

ROOT = Path(__file__).resolve().parents[1]
TRITON_BACKEND = ROOT / ".triton" / "backends" / "onnxruntime" / "libtriton_onnxruntime.so"
CELLS = {"json_c1", "json_c64", "binary_c1", "binary_c64", "health_c64"}


@pytest.mark.skipif(
    not TRITON_BACKEND.is_file(),
    reason=f"Triton is not built ({TRITON_BACKEND.relative_to(ROOT)} absent): run `bash scripts/triton.sh build`",
)
def test_quick_peers_run_writes_every_result(tmp_path_factory, tmp_path):
    run = vae_run(tmp_path_factory)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.serving.peers.serve_peers",
            "--quick",
            "--out",
            str(tmp_path),
            "--only",
            "zoo,triton-ort",
            "--no-install",
            "--run",
            str(run),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result_file,) = tmp_path.glob("serve_peers-*.json")
    result = json.loads(result_file.read_text())
    assert result["benchmark"] == "serve_peers" and result["quick"] is True
    servers = {s["server"]: s for s in result["servers"]}
    assert list(servers) == ["zoo", "triton-ort-0", "triton-ort-200"]
    for entry in servers.values():
        assert entry["status"] == "ok", entry.get("reason")
        assert entry["version"] and entry["settings"]
        assert set(entry["cells"]) == CELLS
        for cell in entry["cells"].values():
            assert cell["requests"] > 0 and cell["errors"] == 0 and cell["good_rps"] > 0
    assert servers["triton-ort-0"]["version"]["triton"] == "2.51.0"
    assert [servers[k]["settings"]["max_queue_delay_microseconds"] for k in ("triton-ort-0", "triton-ort-200")] == [
        0,
        200,
    ]
    # One target per cell against Triton's best setting; none against peers that were not run.
    assert {t["cell"] for t in result["targets"]} == CELLS
    assert all(
        t["against"] in ("triton-ort-0", "triton-ort-200") and t["met"] in (True, False) for t in result["targets"]
    )
    markdown = result_file.with_suffix(".md").read_text()
    assert "| server | JSON c=1 | JSON c=64 | binary c=1 | binary c=64 | health c=64 |" in markdown
    assert "zoo serve / Triton ORT's best setting" in markdown
    assert result_file.with_suffix(".png").stat().st_size > 10_000


def test_peers_are_never_installed_when_installing_is_off(tmp_path, monkeypatch):
    monkeypatch.setattr(peer_processes, "PEERS_DIR", tmp_path)
    context = peer_processes.Context(tmp_path / "generator.onnx", tmp_path, None, install=False)
    with pytest.raises(RuntimeError, match="installing is off"):
        peer_processes.pip_install(context, "kserve", ["kserve==0.21.0"])
    assert not (tmp_path / "kserve").exists()


def test_load_client_reads_chunked_answers():
    """Two requests on one keep-alive connection, each answered in chunks without a length: both count."""
    answer = (
        b"HTTP/1.1 200 OK\r\ninference-header-content-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n5;ext=1\r\nabcde\r\n0\r\n\r\n"
    )

    async def main():
        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
                    writer.write(answer)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        job = {
            "url": f"http://127.0.0.1:{port}",
            "method": "POST",
            "path": "/x",
            "headers": {},
            "body": "e30=",
            "concurrency": 1,
            "requests": 2,
            "seconds": 10,
            "warmup": 0,
        }
        async with server:
            return await load_client._closed_loop(job)

    result = asyncio.run(main())
    assert result["requests"] == 2 and result["status_counts"] == {"200": 2}
