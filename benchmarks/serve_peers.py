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

    python benchmarks/serve_peers.py                  # the full run: a few minutes on 2 cores
    python benchmarks/serve_peers.py --quick --out /tmp/peers --only zoo,triton-ort   # a smoke run
    python benchmarks/serve_load.py --peers           # the same, inside serve_load's full run
"""

import argparse
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402  (beside this file)
import serve_load_client as load_client  # noqa: E402
from serve_load import Server, cores, make_run, pinned, run_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRITON = ROOT / ".triton"
TRITON_ORT_BACKEND = TRITON / "backends" / "onnxruntime" / "libtriton_onnxruntime.so"
PEERS_DIR = ROOT / ".peers"
MODEL = "vae-generator"
MAX_BATCH = 1024  # zoo serve's default --max-batch, so every batching server may merge as many rows
FULL = {"requests": 20000, "seconds": 5.0}
QUICK = {"requests": 300, "seconds": 1.0}
# (cell, tensors or None for the health route, concurrency), the table's columns in order.
CELLS = (("json_c1", "json", 1), ("json_c64", "json", 64), ("binary_c1", "binary", 1),
         ("binary_c64", "binary", 64), ("health_c64", None, 64))
CELL_TITLES = {"json_c1": "JSON c=1", "json_c64": "JSON c=64", "binary_c1": "binary c=1",
               "binary_c64": "binary c=64", "health_c64": "health c=64"}
HEALTH = "/v2/health/ready"
# --only names: one name may stand for several rows (Triton's two queue delays).
GROUPS = {"zoo": ("zoo",), "triton-ort": ("triton-ort-0", "triton-ort-200"), "triton-python": ("triton-python",),
          "kserve": ("kserve",), "mlserver": ("mlserver",)}
LABELS = {"zoo": "zoo serve (defaults, --threads 1)", "triton-ort-0": "Triton ORT backend, queue delay 0",
          "triton-ort-200": "Triton ORT backend, queue delay 200 us",
          "triton-python": "Triton Python backend (onnxruntime)", "kserve": "KServe model server",
          "mlserver": "MLServer"}
TRITON_TARGET, PYTHON_SERVER_TARGET = 0.9, 5.0
KSERVE_VERSION, MLSERVER_VERSION = "0.21.0", "1.7.1"
# The Python backend's stub was built against numpy 1.x: with numpy 2 its outputs come back empty
# (binary_data_size 0; JSON answers "output tensor shape does not match size of output").
STUB_NUMPY = "1.26.4"
START_SECONDS = 120  # model loading on a busy 2-core machine: Triton's Python stub and MLServer take seconds


@dataclass
class Running:
    """One started server: where it answers, how to stop it, and what it is."""

    url: str
    stop: object  # () -> None
    version: dict
    settings: dict
    binary: bool = True  # whether it speaks Triton's binary tensor extension
    note: str = ""


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
        process = subprocess.Popen(pinned(ctx.core, command), stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, **(env or {})})
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

def pip_install(ctx: Context, name: str, requirements: list, target: Path | None = None) -> Path:
    """.peers/<name>: a venv (or, with ``target``, a plain site-packages folder) with ``requirements``.
    Skipped when the folder already holds exactly these requirements; refused where installing is off."""
    folder = PEERS_DIR / name
    marker = folder / "zoo-peer-requirements.json"
    if marker.is_file() and json.loads(marker.read_text()) == requirements:
        return folder
    if not ctx.install:
        raise RuntimeError(f"{folder} is not installed and installing is off (run without --no-install)")
    folder.mkdir(parents=True, exist_ok=True)
    if target is None:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True, capture_output=True)
        pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
    else:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--target", str(target)]
    done = subprocess.run([*pip, *requirements], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} failed: {done.stderr.strip()[-1500:]}")
    marker.write_text(json.dumps(requirements))
    return folder


def venv_versions(python: Path, packages: tuple) -> dict:
    code = ("import json, sys, importlib.metadata as m\n"
            "found = {d.metadata['Name'].lower(): d.version for d in m.distributions()}\n"
            "print(json.dumps({p: found.get(p) for p in sys.argv[1:]}))")
    return json.loads(subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True,
                                     check=True).stdout)


def dist_version(site_packages: Path, package: str) -> str | None:
    found = sorted(site_packages.glob(f"{package}-*.dist-info"))
    return found[-1].name[len(package) + 1:-len(".dist-info")] if found else None


# -- what each peer runs ---------------------------------------------------------------------------

# Triton's Python backend: a TritonPythonModel running the same file with onnxruntime, batching the
# requests Triton's dynamic batcher hands it in one call.
TRITON_PYTHON_MODEL = '''import os
import sys

# The stub's embedded interpreter runs isolated and ignores PYTHONPATH: add it by hand, before numpy.
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]

import json  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        threads = int(config["parameters"]["intra_op_thread_count"]["string_value"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input, self.output = self.session.get_inputs()[0].name, self.session.get_outputs()[0].name

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        rows = self.session.run(None, {self.input: np.concatenate(arrays) if len(arrays) > 1 else arrays[0]})[0]
        answers, start = [], 0
        for array in arrays:
            answers.append(pb_utils.InferenceResponse([pb_utils.Tensor(self.output, rows[start:start + len(array)])]))
            start += len(array)
        return answers
'''

TRITON_PYTHON_CONFIG = '''name: "{name}"
backend: "python"
max_batch_size: {max_batch}
input {{ name: "{input}" data_type: TYPE_FP32 dims: {input_dims} }}
output {{ name: "{output}" data_type: TYPE_FP32 dims: {output_dims} }}
dynamic_batching {{ }}
instance_group [{{ count: 1, kind: KIND_CPU }}]
parameters {{ key: "intra_op_thread_count" value {{ string_value: "1" }} }}
'''

KSERVE_SERVER = '''"""KServe's model server running onnxruntime on one file: python kserve_server.py NAME FILE PORT."""
import sys

name, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
del sys.argv[1:]  # kserve parses the command line when it is imported

import logging  # noqa: E402

import kserve  # noqa: E402
import onnxruntime as ort  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferResponse  # noqa: E402
from kserve.protocol.rest import server as rest  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402


class Generator(kserve.Model):
    def load(self):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input, self.output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.ready = True
        return True

    def get_input_types(self):
        return [{"name": self.input.name, "datatype": "FP32", "shape": [-1, *self.input.shape[1:]]}]

    def get_output_types(self):
        return [{"name": self.output.name, "datatype": "FP32", "shape": [-1, *self.output.shape[1:]]}]

    def predict(self, payload, headers=None):
        rows = self.session.run(None, {self.input.name: payload.inputs[0].as_numpy()})[0]
        out = InferOutput(name=self.output.name, shape=list(rows.shape), datatype="FP32", data=rows)
        return InferResponse(payload.id or generate_uuid(), self.name, [out],
                             use_binary_outputs=payload.use_binary_outputs)


# KServe binds 0.0.0.0; every server in the benchmark listens on loopback only.
_init = rest.RESTServer.__init__


def _loopback(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.config.host = "127.0.0.1"


rest.RESTServer.__init__ = _loopback

if __name__ == "__main__":
    model = Generator(name)
    model.load()
    server = kserve.ModelServer(http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False)
    # After the server has set up logging: no line per request, as zoo serve --quiet.
    for logger in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    server.start([model])
'''

MLSERVER_RUNTIME = '''"""MLServer's custom runtime for the benchmark: onnxruntime on one file, one intra-op thread."""
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class Generator(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        self.input, self.output = self.session.get_inputs()[0].name, self.session.get_outputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = self.session.run(None, {self.input: NumpyCodec.decode_input(payload.inputs[0])})[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output(self.output, rows)])
'''


# -- starting each peer ----------------------------------------------------------------------------

def start_zoo(ctx: Context) -> Running:
    import zoo

    server = Server([ctx.generator.parent], ctx.core)  # serve_load's: defaults plus --threads 1
    return Running(server.url, server.stop, {"zoo": zoo.__version__, "onnxruntime": ctx.ort_version},
                   {"command": "zoo serve RUN --threads 1", "max_batch": MAX_BATCH, "max_delay_ms": 2.0,
                    "instances": 1, "intra_op_threads": 1, "workers": 1})


def ort_library_version(library: Path) -> str | None:
    """The version string of a libonnxruntime.so, from its C API (in a child: it is not this
    process's onnxruntime)."""
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]);"
            "lib.OrtGetApiBase.restype = ctypes.POINTER(ctypes.c_void_p * 2);"  # {GetApi, GetVersionString}
            "print(ctypes.CFUNCTYPE(ctypes.c_char_p)(lib.OrtGetApiBase().contents[1])().decode())")
    done = subprocess.run([sys.executable, "-c", code, str(library)], capture_output=True, text=True)
    return done.stdout.strip() or None


def start_triton(ctx: Context, name: str, repo: Path, env: dict | None = None) -> tuple:
    """tritonserver through scripts/triton.sh on a model repository; (process, url, server version)."""
    if not TRITON_ORT_BACKEND.is_file():
        raise RuntimeError("Triton is not built: run `bash scripts/triton.sh build`")
    port = free_port(3)  # HTTP, gRPC, metrics
    url = f"http://127.0.0.1:{port}"
    process = launch(ctx, name, ["bash", str(ROOT / "scripts" / "triton.sh"), "serve", str(repo), "--port", str(port)],
                     url, env=env, cwd=ROOT)
    return process, url, get_json(url + "/v2")["version"]


def start_triton_ort(ctx: Context, delay_us: int) -> Running:
    from zoo.export.repository import write_model

    repo = ctx.scratch / f"triton-ort-{delay_us}"
    write_model(repo, MODEL, ctx.generator, max_batch=MAX_BATCH, max_delay_ms=delay_us / 1000, instances=1, threads=1)
    process, url, version = start_triton(ctx, f"triton-ort-{delay_us}", repo)
    library = TRITON_ORT_BACKEND.parent / "libonnxruntime.so.1"
    return Running(url, lambda: stop_process(process),
                   {"triton": version, "onnxruntime (backend's library)": ort_library_version(library)},
                   {"backend": "onnxruntime", "max_batch_size": MAX_BATCH, "dynamic_batching": True,
                    "max_queue_delay_microseconds": delay_us, "instance_group_count": 1, "intra_op_thread_count": 1})


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
        raise RuntimeError(f"the Python backend's stub embeds Python {embedded}; this benchmark runs {ours}, "
                           "so it cannot install the stub's numpy and onnxruntime")
    site = PEERS_DIR / "triton-python" / "site-packages"
    pip_install(ctx, "triton-python", [f"numpy=={STUB_NUMPY}", f"onnxruntime=={ctx.ort_version}"], target=site)
    repo = ctx.scratch / "triton-python"
    folder = repo / MODEL
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "1" / "model.onnx").write_bytes(ctx.generator.read_bytes())
    (folder / "1" / "model.py").write_text(TRITON_PYTHON_MODEL)
    (folder / "config.pbtxt").write_text(TRITON_PYTHON_CONFIG.format(name=MODEL, max_batch=MAX_BATCH,
                                                                     **tensor_dims(ctx.generator)))
    # The stub links pytriton's bundled libcudart, found only through LD_LIBRARY_PATH.
    bundled = sorted((TRITON / "venv").glob("lib/python3*/site-packages/nvidia_pytriton.libs"))
    libraries = os.pathsep.join([*map(str, bundled), os.environ.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
    process, url, version = start_triton(ctx, "triton-python", repo, env={"PYTHONPATH": str(site),
                                                                          "LD_LIBRARY_PATH": libraries})
    return Running(url, lambda: stop_process(process),
                   {"triton": version, "python": embedded, "onnxruntime": dist_version(site, "onnxruntime"),
                    "numpy": dist_version(site, "numpy")},
                   {"backend": "python", "max_batch_size": MAX_BATCH, "dynamic_batching": True,
                    "max_queue_delay_microseconds": 0, "instance_group_count": 1, "intra_op_thread_count": 1})


def tensor_dims(onnx_file: Path) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (source,), (target,) = session.get_inputs(), session.get_outputs()
    return {"input": source.name, "output": target.name, "input_dims": list(source.shape[1:]),
            "output_dims": list(target.shape[1:])}


def start_kserve(ctx: Context) -> Running:
    folder = pip_install(ctx, "kserve", [f"kserve=={KSERVE_VERSION}", f"onnxruntime=={ctx.ort_version}"])
    python = folder / "bin" / "python"
    script = ctx.scratch / "kserve_server.py"
    script.write_text(KSERVE_SERVER)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = launch(ctx, "kserve", [str(python), str(script), MODEL, str(ctx.generator), str(port)], url)
    # Its SIGTERM handler stops only multi-process and gRPC servers: a single worker is killed after a wait.
    return Running(url, lambda: stop_process(process, grace=5),
                   venv_versions(python, ("kserve", "onnxruntime", "numpy", "fastapi", "uvicorn", "uvloop")),
                   {"model": "kserve.Model subclass, predict runs onnxruntime", "workers": 1, "grpc": False,
                    "batching": "none (KServe's batcher is a separate sidecar in a cluster)", "intra_op_threads": 1,
                    "per-request logging": "off (uvicorn.access and kserve.trace at WARNING, latency logging off)"})


def start_mlserver(ctx: Context) -> Running:
    folder = pip_install(ctx, "mlserver", [f"mlserver=={MLSERVER_VERSION}", f"onnxruntime=={ctx.ort_version}"])
    home = ctx.scratch / "mlserver"
    home.mkdir(parents=True, exist_ok=True)
    (home / "zoo_peer_mlserver.py").write_text(MLSERVER_RUNTIME)
    port = free_port(3)
    settings = {"debug": False, "parallel_workers": 0, "host": "127.0.0.1", "http_port": port, "grpc_port": port + 1,
                "metrics_port": port + 2}
    # Adaptive batching: a batch closes when 64 requests are in (every client at c=64) or after 200 us.
    model = {"name": MODEL, "implementation": "zoo_peer_mlserver.Generator", "max_batch_size": 64,
             "max_batch_time": 0.0002, "parameters": {"uri": str(ctx.generator)}}
    (home / "settings.json").write_text(json.dumps(settings))
    (home / "model-settings.json").write_text(json.dumps(model))
    url = f"http://127.0.0.1:{port}"
    process = launch(ctx, "mlserver", [str(folder / "bin" / "mlserver"), "start", str(home)], url, cwd=home)
    packages = ("mlserver", "onnxruntime", "numpy", "fastapi", "uvicorn", "uvloop")
    return Running(url, lambda: stop_process(process), venv_versions(folder / "bin" / "python", packages),
                   {"runtime": "MLModel subclass, predict runs onnxruntime", "intra_op_threads": 1,
                    **{k: settings[k] for k in ("parallel_workers", "debug")},
                    **{k: model[k] for k in ("max_batch_size", "max_batch_time")}},
                   binary=False, note="no binary tensor extension")


STARTERS = {"zoo": start_zoo, "triton-ort-0": lambda ctx: start_triton_ort(ctx, 0),
            "triton-ort-200": lambda ctx: start_triton_ort(ctx, 200), "triton-python": start_triton_python,
            "kserve": start_kserve, "mlserver": start_mlserver}


# -- measuring -------------------------------------------------------------------------------------

def requests_for(generator: Path) -> dict:
    """The batch-1 requests every server gets (the same bytes), and the answer they must give."""
    import numpy as np
    import onnxruntime as ort

    dims = tensor_dims(generator)
    tensor = {"name": dims["input"], "shape": [1, *dims["input_dims"]]}
    requests = {tensors: load_client.infer_request("", MODEL, tensor, binary=tensors == "binary")
                for tensors in ("json", "binary")}
    values = json.loads(base64.b64decode(requests["json"]["body"]))["inputs"][0]["data"]
    session = ort.InferenceSession(str(generator), providers=["CPUExecutionProvider"])
    expected = session.run(None, {dims["input"]: np.asarray(values, np.float32).reshape(tensor["shape"])})[0]
    return {**requests, "health": {"method": "GET", "path": HEALTH, "headers": {}, "body": ""},
            "expected": expected.ravel()}


def answer(url: str, request: dict):
    """One request's output values (JSON or binary answer, chunked or not) as a flat float32 array."""
    import numpy as np

    sent = urllib.request.Request(url + request["path"], data=base64.b64decode(request["body"]),
                                  headers=request["headers"], method=request["method"])
    with urllib.request.urlopen(sent, timeout=30) as response:
        body, header = response.read(), response.headers.get("Inference-Header-Content-Length")
    if header is not None:
        return np.frombuffer(body[int(header):], "<f4")
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
        log(f"{label:<40} {CELL_TITLES[cell]:<12} {found['rps']:>8.0f} req/s  p50 {found.get('p50_ms', 0):.2f} ms  "
            f"p99 {found.get('p99_ms', 0):.2f} ms  errors {found['errors']}")
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
    return {"pinned": server_core is not None, "plan": plan, "cells": [c for c, _, _ in CELLS], "servers": servers,
            "targets": targets(servers)}


# -- targets, Markdown and the plot ----------------------------------------------------------------

def good_rps(entry, cell: str):
    """Successful requests/s of one server's cell, or None where it was not measured."""
    if not entry or entry.get("status") != "ok":
        return None
    return entry["cells"].get(cell, {}).get("good_rps")


def why_missing(entry, cell: str) -> str:
    if not entry:
        return "not measured"
    if entry.get("status") != "ok":
        return f"{entry['label']} failed"
    found = entry["cells"].get(cell, {})
    return found.get("skipped") or ("client failed" if "failed" in found else "not measured")


def ratio(target: str, cell: str, against: str | None, ours, theirs, threshold: float, missing: str) -> dict:
    if ours is None or not theirs:
        return {"target": target, "cell": cell, "against": against, "value": None, "threshold": threshold,
                "met": None, "why": missing}
    value = ours / theirs
    return {"target": target, "cell": cell, "against": against, "value": value, "threshold": threshold,
            "met": value >= threshold}


def targets(servers: list) -> list:
    """zoo serve against Triton's best setting in every cell, and against KServe and MLServer at c=64."""
    by = {s["server"]: s for s in servers}
    if "zoo" not in by:
        return []
    zoo, found = by["zoo"], []

    def against(cell, key, theirs, threshold, title):
        ours = good_rps(zoo, cell)
        missing = why_missing(zoo, cell) if ours is None else why_missing(by[key], cell)
        found.append(ratio(f"{CELL_TITLES[cell]}: zoo serve / {title} >= {threshold:g}x", cell, key, ours, theirs,
                           threshold, missing))

    tritons = [k for k in ("triton-ort-0", "triton-ort-200") if k in by]
    for cell, _, _ in CELLS if tritons else ():
        best = max(((good_rps(by[k], cell), k) for k in tritons if good_rps(by[k], cell)), default=(None, tritons[0]))
        against(cell, best[1], best[0], TRITON_TARGET, "Triton ORT's best setting")
    for key in ("kserve", "mlserver"):
        for cell in ("json_c64", "binary_c64") if key in by else ():
            against(cell, key, good_rps(by[key], cell), PYTHON_SERVER_TARGET, LABELS[key])
    return found


def cell_text(entry, cell: str) -> str:
    rps = good_rps(entry, cell)
    if rps is None:
        return why_missing(entry, cell) if entry.get("status") == "ok" else "-"
    errors = entry["cells"][cell]["errors"]
    return f"{rps:,.0f}" + (f" ({errors} errors)" if errors else "")


def target_text(target: dict) -> str:
    if target["value"] is None:
        return f"| {target['target']} | {target['why']} | - |"
    return (f"| {target['target']} | {target['value']:.2f}x (against {target['against']}) | "
            f"{'yes' if target['met'] else 'no'} |")


def markdown_rows(peers: dict) -> list:
    """The peers' table, their targets and their versions and settings: for this script's Markdown
    and for serve_load's under `--peers`."""
    lines = ["| server | " + " | ".join(CELL_TITLES[c] for c, _, _ in CELLS) + " |",
             "|---|" + "---:|" * len(CELLS)]
    for entry in peers["servers"]:
        lines.append(f"| {entry['label']} | " + " | ".join(cell_text(entry, c) for c, _, _ in CELLS) + " |")
    lines += ["", "Requests/s (successful ones), batch-1 requests to the VAE generator; the health route is "
              f"`GET {HEALTH}`.", ""]
    for entry in peers["servers"]:
        if entry.get("status") != "ok":
            lines.append(f"- {entry['label']}: not measured: {' '.join(entry['reason'].split())}")
        elif entry.get("note"):
            lines.append(f"- {entry['label']}: {entry['note']}.")
    if peers["targets"]:
        lines += ["", "| target | measured | met |", "|---|---|---|", *map(target_text, peers["targets"])]
    lines += ["", "| server | versions | settings |", "|---|---|---|"]
    for entry in peers["servers"]:
        versions = ", ".join(f"{k} {v}" for k, v in entry.get("version", {}).items())
        settings = ", ".join(f"{k}: {v}" for k, v in entry.get("settings", {}).items())
        lines.append(f"| {entry['label']} | {versions or '-'} | {settings or '-'} |")
    return lines


def markdown(result: dict, image: str = "") -> str:
    m = result["machine"]
    pinning = ("each server pinned to one core, the load client to the other" if result["pinned"]
               else "not pinned (fewer than 2 cores)")
    quick = " (quick run: too few requests to read much into)" if result["quick"] else ""
    lines = [f"# zoo serve beside its peers{quick}",
             "", f"{m['cpu']}, {m['cores']} cores, {pinning}; Python {m['versions']['python']}, {m['date']}. "
             "The same seeded VAE generator file in every server, onnxruntime at one intra-op thread everywhere; "
             "serve_load's closed-loop client on keep-alive connections over loopback, "
             f"{result['plan']['requests']} requests or {result['plan']['seconds']:g} s per cell.", "",
             *markdown_rows(result), "", f"![requests/s per cell and server]({image})", "", "## Every cell", "",
             "| server | cell | req/s | p50 ms | p90 ms | p99 ms | errors |", "|---|---|---:|---:|---:|---:|---:|"]
    for entry in result["servers"]:
        for cell, found in entry.get("cells", {}).items():
            if found.get("requests"):
                latency = " | ".join(f"{found[p]:.2f}" for p in ("p50_ms", "p90_ms", "p99_ms"))
                lines.append(f"| {entry['label']} | {CELL_TITLES[cell]} | {found['rps']:,.0f} | {latency} | "
                             f"{found['errors']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    servers = [s for s in result["servers"] if s.get("status") == "ok"]
    width = 0.8 / max(1, len(servers))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for i, entry in enumerate(servers):
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(CELLS))]
        ys = [good_rps(entry, cell) or 0 for cell, _, _ in CELLS]
        ax.bar(xs, ys, width, label=entry["label"])
    ax.set_xticks(range(len(CELLS)), [CELL_TITLES[c] for c, _, _ in CELLS])
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("requests / s (log scale; no bar: not measured)")
    ax.set_title("batch-1 requests to the VAE generator, one server core")
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(result: dict, out: Path | None) -> tuple:
    """serve_peers-<machine>-<date>.json, .md and .png in ``out`` (default benchmarks/results)."""
    stem = f"serve_peers-{machine.slug(result['machine'])}-{result['machine']['date']}"
    text = markdown(result, stem + ".png")
    json_path, md_path = machine.write_results("serve_peers", result, text, out)
    return json_path, md_path, plot(result, md_path.with_suffix(".png"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: every cell, few requests")
    parser.add_argument("--out", type=Path, help="folder for the results (default: benchmarks/results)")
    parser.add_argument("--only", type=lambda s: [n.strip() for n in s.split(",") if n.strip()],
                        help=f"comma-separated servers to run, of {','.join(GROUPS)} (default: all)")
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
        result = {"benchmark": "serve_peers", "quick": args.quick, "machine": machine.describe(),
                  **measure_peers(run / "generator.onnx", QUICK if args.quick else FULL, log, Path(scratch),
                                  args.only, install=not args.no_install)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    json_path, md_path, png_path = write(result, args.out)
    print(f"wrote {json_path}, {md_path.name} and {png_path.name} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
