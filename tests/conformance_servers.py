"""What tests/test_serve_conformance.py shares beside its tests: the constants, the differences between
zoo serve and Triton (each named, with why), a running Triton on free ports, onnxruntime's reference
answers, and helpers that build requests and read answers the same way from either server."""

import json
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
import pytest
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

ROOT = Path(__file__).resolve().parents[1]
TRITON_SCRIPT = ROOT / "scripts" / "triton.sh"
TRITON_BACKEND = ROOT / ".triton" / "backends" / "onnxruntime" / "libtriton_onnxruntime.so"
TRITON_START_S = 60  # Triton loads the seven models in about a second; this only bounds a broken start
PARTS = ("encoder", "decoder", "generator")
ROWS = 3  # rows per request: a batch, not one row
SMALL = "small-generator"  # vae's generator again, with a max batch of SMALL_MAX_BATCH, as version 2
SCORER = "vae-scorer"  # the vae's scorer: a [batch] FP32 score and a [batch] BOOL flag, served as [batch, 1]
SMALL_MAX_BATCH = 4
SMALL_VERSION = "2"
ATOL = 1e-5  # against in-process onnxruntime (Triton's backend runs another onnxruntime build)

DIFFERENCES = {
    # Both follow the protocol, whose extensions are each server's own: Triton lists the many it has
    # (model_configuration, statistics, ...), zoo serve the one it implements, binary_tensor_data.
    "extensions": "Triton lists its own extensions besides binary_tensor_data; zoo serve lists only that one",
    # The protocol defines these bodies ($live_server_response, $ready_server_response,
    # $ready_model_response); Triton answers with the status alone (200, an empty text/plain body), as
    # an older text of the protocol had it. zoo serve keeps the bodies; a client reading only the
    # status (as tritonclient does) sees the same answer from both.
    "health bodies": "health and model-ready: Triton 200 with an empty body, zoo serve 200 with the protocol's JSON",
    # "A 4xx status code indicates false": both answer a 4xx. Triton says 400 "Model version not
    # ready" for any model not ready (one still loading included); zoo serve, which loads every model
    # before it listens, can only lack the model, and says 404 as both servers do for an unknown
    # model's metadata and infer (tests/test_serve_api.py holds zoo serve to that 404).
    "not ready status": "ready for a model or version the server lacks: Triton 400, zoo serve 404",
    # The protocol's error is a JSON object, and both send one; Triton labels some of them
    # text/plain (an unknown model's infer, a model not ready). zoo serve labels every error
    # application/json.
    "error content type": "Triton labels some JSON error bodies text/plain; zoo serve always application/json",
    # Each server words its errors its own way; the tests check the status and {"error": "..."}.
    "error messages": 'the error text differs; both answer {"error": "..."}',
    # An extra field of zoo serve's (the zoo.* description that its page reads: model, part, shapes,
    # prior); Triton's metadata has no parameters. Clients ignore fields they do not know.
    "metadata parameters": "zoo serve's model metadata adds parameters (the zoo.* description)",
    # GET /v2/models/NAME/config (tritonclient's get_model_config) is Triton's model_configuration
    # extension, not the protocol: zoo serve does not offer it (and does not list it), so it is a 404
    # there; the same config.pbtxt is on disk for whoever wants it.
    "model config": "GET /v2/models/NAME/config: Triton answers the ModelConfig, zoo serve 404",
    # The client's fault, and the protocol says a failed request is "typically 400": Triton answers
    # 500 when its JSON parser cannot read the tensors (a value count not matching the shape, strings
    # for numbers, malformed JSON, a numeric id, a non-boolean binary_data_output). zoo serve keeps 400.
    "malformed data status": "data Triton cannot parse: Triton 500, zoo serve 400",
    # NaN and Infinity are not JSON; Triton's parser reads them and runs the model on them. zoo serve
    # refuses non-finite values (README, "Limits"), as it refuses every other malformed body.
    "non-finite values": "NaN in JSON data: Triton runs it (200, NaN out), zoo serve 400",
    # HTTP content negotiation, beneath the protocol: Triton gzips an answer when the client accepts
    # gzip (httpx and browsers do); zoo serve always answers uncompressed. Clients decode both alike.
    "compression": "Triton gzips answers for clients that accept gzip; zoo serve never compresses",
    # The protocol gives the outputs of an answer no order. Triton answers them in name order (its
    # requested outputs are a std::set), whatever order the request asked for; zoo serve in the order
    # asked, else the model's (that of its metadata). Sorting would cost zoo serve work on every
    # request for no client the protocol describes: clients find outputs by name, as tritonclient's
    # as_numpy does.
    "output order": "outputs: Triton in name order, zoo serve in the order asked, else the model's",
    # Triton writes each FP32 output value as a double with 17 significant digits, zoo serve as the
    # shortest decimal that reads back as the same float32: the text differs, the float32s do not.
    "json float digits": "JSON output numbers: Triton 17 digits, zoo serve the shortest float32 spelling",
}


def per_server(served, difference: str, *, zoo, triton):
    """The expected answer where the two servers differ; ``difference`` names the DIFFERENCES entry."""
    assert difference in DIFFERENCES, f"name the difference in DIFFERENCES: {difference!r}"
    return zoo if served.kind == "zoo" else triton


def version_of(model: str) -> str:
    return SMALL_VERSION if model == SMALL else "1"


class Reference:
    """In-process onnxruntime on the repository's own model.onnx files: what both servers must answer."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.sessions = {}

    def session(self, model: str) -> onnxruntime.InferenceSession:
        if model not in self.sessions:
            path = self.repo / model / version_of(model) / "model.onnx"
            self.sessions[model] = onnxruntime.InferenceSession(str(path))
        return self.sessions[model]

    def input(self, model: str) -> tuple:
        """(input name, its shape without the batch)."""
        node = self.session(model).get_inputs()[0]
        return node.name, tuple(node.shape[1:])

    def rows(self, model: str, n: int = ROWS, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, *self.input(model)[1]), dtype=np.float32)

    def outputs(self, model: str, rows: np.ndarray) -> dict:
        """Each output as the protocol serves it: a tensor of the batch alone (a scorer's) as [batch, 1]."""
        session = self.session(model)
        answers = session.run(None, {self.input(model)[0]: rows})
        return {o.name: a.reshape(len(rows), 1) if a.ndim == 1 else a for o, a in zip(session.get_outputs(), answers)}

    def served_shape(self, model: str, output) -> list:
        return [-1, *output.shape[1:]] if len(output.shape) > 1 else [-1, 1]


def write_scorer(vae_run: Path, folder: Path) -> Path:
    """scorer.onnx of ``vae_run`` (seeded, untrained) with a threshold at the median score of
    Reference.rows-like inputs, so that the flags of a request come out both ways."""
    import shutil

    import torch

    from zoo.export.onnx import export_run
    from zoo.train.run_folder import CONFIG, WEIGHTS, load_run, write_threshold

    folder.mkdir(parents=True)
    for name in (CONFIG, WEIGHTS):
        shutil.copyfile(vae_run / name, folder / name)
    model = load_run(folder).model
    rows = torch.from_numpy(np.random.default_rng(0).standard_normal((64, *model.data_shape), dtype=np.float32))
    with torch.no_grad():
        threshold = float(model.score(rows).median())
    write_threshold(
        folder, {"definition": model.score_definition, "threshold": threshold, "fpr": 0.5, "held_out_samples": 64}
    )
    return export_run(folder)["scorer"]


def free_port_run(count: int = 3) -> int:
    """A port P with P .. P+count-1 all free just now: Triton takes HTTP, gRPC and metrics in a row."""
    while True:
        held = []
        try:
            first = socket.socket()
            held.append(first)
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            for offset in range(1, count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port + offset))
            return port
        except (OSError, OverflowError):
            continue
        finally:
            for sock in held:
                sock.close()


class Triton:
    """``bash scripts/triton.sh serve REPO --port P`` in a subprocess (the script execs tritonserver)."""

    def __init__(self, repo: Path, log: Path, attempts: int = 3):
        self.log = log
        for _ in range(attempts):  # a port may be taken between choosing it and Triton binding it
            port = free_port_run()
            with open(log, "w") as out:  # a file, not a pipe: Triton's log must never block it
                self.process = subprocess.Popen(
                    ["bash", str(TRITON_SCRIPT), "serve", str(repo), "--port", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if self._serving(port):
                self.url = f"http://127.0.0.1:{port}"
                return
        raise RuntimeError(f"Triton did not start in {attempts} attempts:\n{self.log_text()[-3000:]}")

    def _serving(self, port: int) -> bool:
        """True once this process serves HTTP on ``port`` and is ready; False if it exited first."""
        # Its own log line, not only a 200: another process on the port would answer too.
        started = f"Started HTTPService at 127.0.0.1:{port}"
        deadline = time.monotonic() + TRITON_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if started in self.log_text():
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"Triton was not ready within {TRITON_START_S} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (Triton unloads its models and exits), then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@dataclass
class Served:
    kind: str  # "zoo" or "triton"
    url: str
    http: httpx.Client
    client: triton_http.InferenceServerClient  # tritonclient's


# -- helpers for requests and answers ---------------------------------------------------------------


def eps_request(shape, data, datatype="FP32", **request) -> dict:
    return {"inputs": [{"name": "eps", "shape": shape, "datatype": datatype, "data": data}], **request}


def binary_request(rows: np.ndarray, name: str, datatype: str = "FP32", **request) -> tuple:
    """(body, headers) with ``rows`` as the input's binary data, after the JSON header."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(rows.shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            **request,
        }
    ).encode()
    return header + rows.tobytes(), {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def answer_of(response) -> tuple:
    """(the JSON answer, {output name: float32 or bool array}), whether each output came as JSON or binary."""
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    header = response.content if length is None else response.content[: int(length)]
    answer, tail, arrays = json.loads(header), memoryview(response.content)[len(header) :], {}
    for output in answer["outputs"]:
        assert output["datatype"] in ("FP32", "BOOL")
        dtype = np.dtype("<f4") if output["datatype"] == "FP32" else np.dtype(np.bool_)  # BOOL: one byte each
        if "binary_data_size" in output.get("parameters", {}):
            size = output["parameters"]["binary_data_size"]
            arrays[output["name"]] = np.frombuffer(tail[:size], dtype).reshape(output["shape"])
            tail = tail[size:]
        else:
            values = output["data"]
            assert all(isinstance(v, bool) for v in values) == (dtype == np.bool_)  # JSON true/false, not 0/1
            arrays[output["name"]] = np.asarray(values, dtype).reshape(output["shape"])
    assert len(tail) == 0  # every byte after the header belongs to an output
    return answer, arrays


def assert_matches(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)  # the same outputs (their order: see "output order")
    for name in expected:
        assert actual[name].dtype == expected[name].dtype, name
        if expected[name].dtype == np.bool_:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
        else:
            np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=ATOL, err_msg=name)


def assert_error(response, status: int) -> None:
    """The protocol's error answer: ``status`` and a JSON object {"error": "..."} (its text is each
    server's own: see "error messages")."""
    assert response.status_code == status, response.text
    body = json.loads(response.content)  # JSON whatever the content type says (see "error content type")
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]


def body_or_none(response):
    """The JSON body, or None for an empty one."""
    return response.json() if response.content else None


def significant_digits(number: str) -> int:
    mantissa = number.lower().split("e")[0].lstrip("-").replace(".", "")
    return len(mantissa.lstrip("0"))


def tritonclient_status(call) -> int:
    """The HTTP status of a tritonclient call that must fail."""
    with pytest.raises(InferenceServerException) as raised:
        call()
    return int(raised.value.status())


def infer(served, model: str, body, headers=None, version: str | None = None):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    if isinstance(body, dict):
        return served.http.post(path, json=body)
    return served.http.post(path, content=body, headers=headers)
