"""Starting each server serve_peers measures: zoo serve, Triton (onnxruntime and Python backends, from
scripts/triton.sh), KServe and MLServer (pinned, in their own venvs under .peers/), each on free
loopback ports, pinned to the server's core, until it answers (the plumbing: peer_processes); and
the table's cells, labels and targets."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.serving.harness import ROOT, Server
from benchmarks.serving.peers.peer_models import (
    KSERVE_SERVER,
    MLSERVER_RUNTIME,
    TRITON_PYTHON_CONFIG,
    TRITON_PYTHON_MODEL,
)
from benchmarks.serving.peers.peer_processes import (
    Context,
    dist_version,
    free_port,
    get_json,
    launch,
    pip_install,
    stop_process,
    venv_versions,
)

TRITON = ROOT / ".triton"
TRITON_ORT_BACKEND = TRITON / "backends" / "onnxruntime" / "libtriton_onnxruntime.so"
MODEL = "vae-generator"
MAX_BATCH = 1024  # zoo serve's default --max-batch, so every batching server may merge as many rows
FULL = {"requests": 20000, "seconds": 5.0}
QUICK = {"requests": 300, "seconds": 1.0}
# (cell, tensors or None for the health route, concurrency), the table's columns in order.
CELLS = (
    ("json_c1", "json", 1),
    ("json_c64", "json", 64),
    ("binary_c1", "binary", 1),
    ("binary_c64", "binary", 64),
    ("health_c64", None, 64),
)
CELL_TITLES = {
    "json_c1": "JSON c=1",
    "json_c64": "JSON c=64",
    "binary_c1": "binary c=1",
    "binary_c64": "binary c=64",
    "health_c64": "health c=64",
}
# --only names: one name may stand for several rows (Triton's two queue delays).
GROUPS = {
    "zoo": ("zoo",),
    "triton-ort": ("triton-ort-0", "triton-ort-200"),
    "triton-python": ("triton-python",),
    "kserve": ("kserve",),
    "mlserver": ("mlserver",),
}
LABELS = {
    "zoo": "zoo serve (defaults, --threads 1)",
    "triton-ort-0": "Triton ORT backend, queue delay 0",
    "triton-ort-200": "Triton ORT backend, queue delay 200 us",
    "triton-python": "Triton Python backend (onnxruntime)",
    "kserve": "KServe model server",
    "mlserver": "MLServer",
}
TRITON_TARGET, PYTHON_SERVER_TARGET = 0.9, 5.0
KSERVE_VERSION, MLSERVER_VERSION = "0.21.0", "1.7.1"
# The Python backend's stub was built against numpy 1.x: with numpy 2 its outputs come back empty
# (binary_data_size 0; JSON answers "output tensor shape does not match size of output").
STUB_NUMPY = "1.26.4"


@dataclass
class Running:
    """One started server: where it answers, how to stop it, and what it is."""

    url: str
    stop: object  # () -> None
    version: dict
    settings: dict
    binary: bool = True  # whether it speaks Triton's binary tensor extension
    note: str = ""


# -- starting each peer ----------------------------------------------------------------------------


def start_zoo(ctx: Context) -> Running:
    import zoo

    server = Server([ctx.generator.parent], ctx.core)  # the harness's: defaults plus --threads 1
    return Running(
        server.url,
        server.stop,
        {"zoo": zoo.__version__, "onnxruntime": ctx.ort_version},
        {
            "command": "zoo serve RUN --threads 1",
            "max_batch": MAX_BATCH,
            "max_delay_ms": 2.0,
            "instances": 1,
            "intra_op_threads": 1,
            "workers": 1,
        },
    )


def ort_library_version(library: Path) -> str | None:
    """The version string of a libonnxruntime.so, from its C API (in a child: it is not this
    process's onnxruntime)."""
    code = (
        "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]);"
        "lib.OrtGetApiBase.restype = ctypes.POINTER(ctypes.c_void_p * 2);"  # {GetApi, GetVersionString}
        "print(ctypes.CFUNCTYPE(ctypes.c_char_p)(lib.OrtGetApiBase().contents[1])().decode())"
    )
    done = subprocess.run([sys.executable, "-c", code, str(library)], capture_output=True, text=True)
    return done.stdout.strip() or None


def start_triton(ctx: Context, name: str, repo: Path, env: dict | None = None) -> tuple:
    """tritonserver through scripts/triton.sh on a model repository; (process, url, server version)."""
    if not TRITON_ORT_BACKEND.is_file():
        raise RuntimeError("Triton is not built: run `bash scripts/triton.sh build`")
    port = free_port(3)  # HTTP, gRPC, metrics
    url = f"http://127.0.0.1:{port}"
    process = launch(
        ctx,
        name,
        ["bash", str(ROOT / "scripts" / "triton.sh"), "serve", str(repo), "--port", str(port)],
        url,
        env=env,
        cwd=ROOT,
    )
    return process, url, get_json(url + "/v2")["version"]


def start_triton_ort(ctx: Context, delay_us: int) -> Running:
    from zoo.export.repository import write_model

    repo = ctx.scratch / f"triton-ort-{delay_us}"
    write_model(
        repo, MODEL, ctx.generator, max_batch=MAX_BATCH, max_delay_ms=delay_us / 1000, instances=1, intra_op_threads=1
    )
    process, url, version = start_triton(ctx, f"triton-ort-{delay_us}", repo)
    library = TRITON_ORT_BACKEND.parent / "libonnxruntime.so.1"
    return Running(
        url,
        lambda: stop_process(process),
        {"triton": version, "onnxruntime (backend's library)": ort_library_version(library)},
        {
            "backend": "onnxruntime",
            "max_batch_size": MAX_BATCH,
            "dynamic_batching": True,
            "max_queue_delay_microseconds": delay_us,
            "instance_group_count": 1,
            "intra_op_thread_count": 1,
        },
    )


def stub_python(stub: Path) -> str | None:
    """The Python version the python backend's stub embeds (it links libpython3.X.so)."""
    import re

    found = re.search(rb"libpython(3\.\d+)\.so", stub.read_bytes())
    return found.group(1).decode() if found else None


def start_triton_python(ctx: Context) -> Running:
    stub = TRITON / "backends" / "python" / "triton_python_backend_stub"
    if not stub.is_file():
        raise RuntimeError(f"{stub} is missing: run `bash scripts/triton.sh build`")
    embedded, ours = stub_python(stub), f"{sys.version_info[0]}.{sys.version_info[1]}"
    if embedded != ours:
        raise RuntimeError(
            f"the Python backend's stub embeds Python {embedded}; this benchmark runs {ours}, "
            "so it cannot install the stub's numpy and onnxruntime"
        )
    requirements = [f"numpy=={STUB_NUMPY}", f"onnxruntime=={ctx.ort_version}"]
    site = pip_install(ctx, "triton-python", requirements, site_packages=True) / "site-packages"
    repo = ctx.scratch / "triton-python"
    folder = repo / MODEL
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "1" / "model.onnx").write_bytes(ctx.generator.read_bytes())
    (folder / "1" / "model.py").write_text(TRITON_PYTHON_MODEL)
    (folder / "config.pbtxt").write_text(
        TRITON_PYTHON_CONFIG.format(name=MODEL, max_batch=MAX_BATCH, **tensor_dims(ctx.generator))
    )
    # The stub links pytriton's bundled libcudart, found only through LD_LIBRARY_PATH.
    bundled = sorted((TRITON / "venv").glob("lib/python3*/site-packages/nvidia_pytriton.libs"))
    libraries = os.pathsep.join([*map(str, bundled), os.environ.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
    process, url, version = start_triton(
        ctx, "triton-python", repo, env={"PYTHONPATH": str(site), "LD_LIBRARY_PATH": libraries}
    )
    return Running(
        url,
        lambda: stop_process(process),
        {
            "triton": version,
            "python": embedded,
            "onnxruntime": dist_version(site, "onnxruntime"),
            "numpy": dist_version(site, "numpy"),
        },
        {
            "backend": "python",
            "max_batch_size": MAX_BATCH,
            "dynamic_batching": True,
            "max_queue_delay_microseconds": 0,
            "instance_group_count": 1,
            "intra_op_thread_count": 1,
        },
    )


def tensor_dims(onnx_file: Path) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (source,), (target,) = session.get_inputs(), session.get_outputs()
    return {
        "input": source.name,
        "output": target.name,
        "input_dims": list(source.shape[1:]),
        "output_dims": list(target.shape[1:]),
    }


def start_kserve(ctx: Context) -> Running:
    folder = pip_install(ctx, "kserve", [f"kserve=={KSERVE_VERSION}", f"onnxruntime=={ctx.ort_version}"])
    python = folder / "bin" / "python"
    script = ctx.scratch / "kserve_server.py"
    script.write_text(KSERVE_SERVER)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = launch(ctx, "kserve", [str(python), str(script), MODEL, str(ctx.generator), str(port)], url)
    # Its SIGTERM handler stops only multi-process and gRPC servers: a single worker is killed after a wait.
    return Running(
        url,
        lambda: stop_process(process, grace=5),
        venv_versions(python, ("kserve", "onnxruntime", "numpy", "fastapi", "uvicorn", "uvloop")),
        {
            "model": "kserve.Model subclass, predict runs onnxruntime",
            "workers": 1,
            "grpc": False,
            "batching": "none (KServe's batcher is a separate sidecar in a cluster)",
            "intra_op_threads": 1,
            "per-request logging": "off (uvicorn.access and kserve.trace at WARNING, latency logging off)",
        },
    )


def start_mlserver(ctx: Context) -> Running:
    folder = pip_install(ctx, "mlserver", [f"mlserver=={MLSERVER_VERSION}", f"onnxruntime=={ctx.ort_version}"])
    home = ctx.scratch / "mlserver"
    home.mkdir(parents=True, exist_ok=True)
    (home / "zoo_peer_mlserver.py").write_text(MLSERVER_RUNTIME)
    port = free_port(3)
    settings = {
        "debug": False,
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": port + 1,
        "metrics_port": port + 2,
    }
    # Adaptive batching: a batch closes when 64 requests are in (every client at c=64) or after 200 us.
    model = {
        "name": MODEL,
        "implementation": "zoo_peer_mlserver.Generator",
        "max_batch_size": 64,
        "max_batch_time": 0.0002,
        "parameters": {"uri": str(ctx.generator)},
    }
    (home / "settings.json").write_text(json.dumps(settings))
    (home / "model-settings.json").write_text(json.dumps(model))
    url = f"http://127.0.0.1:{port}"
    process = launch(ctx, "mlserver", [str(folder / "bin" / "mlserver"), "start", str(home)], url, cwd=home)
    packages = ("mlserver", "onnxruntime", "numpy", "fastapi", "uvicorn", "uvloop")
    return Running(
        url,
        lambda: stop_process(process),
        venv_versions(folder / "bin" / "python", packages),
        {
            "runtime": "MLModel subclass, predict runs onnxruntime",
            "intra_op_threads": 1,
            **{k: settings[k] for k in ("parallel_workers", "debug")},
            **{k: model[k] for k in ("max_batch_size", "max_batch_time")},
        },
        binary=False,
        note="no binary tensor extension",
    )


STARTERS = {
    "zoo": start_zoo,
    "triton-ort-0": lambda ctx: start_triton_ort(ctx, 0),
    "triton-ort-200": lambda ctx: start_triton_ort(ctx, 200),
    "triton-python": start_triton_python,
    "kserve": start_kserve,
    "mlserver": start_mlserver,
}


# -- measuring -------------------------------------------------------------------------------------
