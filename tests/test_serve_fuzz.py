"""Property: whatever body and headers a client sends to an infer route, the answer is a 4xx with an
error line, or a 200 holding exactly the rows asked for; never a 5xx, never a hang.

Hypothesis generates near-valid requests (each field of a good request replaced by something odd,
an ``id`` and parameter strings of any text, lone surrogates included), arbitrary JSON, arbitrary
bytes, binary-tensor bodies with arbitrary Inference-Header-Content-Length values, and good requests
padded to just under or over the body limit, with row counts on both sides of the answer limit.
They go to the app in-process through ASGI (the same object uvicorn serves), many of them, and to a
real `zoo serve` over HTTP (httptools and the connection layer), fewer.
"""

import functools
import json
import math
import re
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_serve_helpers import Server, read_response, vae_run

from zoo.serve.http.app import Settings, create_app
from zoo.serve.http.inprocess import InProcessServer
from zoo.serve.inference.models import load_models
from zoo.serve.protocol import HEADER_ALLOWANCE, REQUEST_BYTES_PER_VALUE

MAX_BATCH = 8
INPUTS = {"vae-encoder": ("x", [1, 28, 28]), "vae-decoder": ("z", [20]), "vae-generator": ("eps", [20])}
# The answer limit falls between 4 and 5 rows of 784 values in JSON (16 bytes each at most): requests
# on both sides of it come up often.
MAX_RESPONSE = 60_000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return load_models([vae_run(tmp_path_factory)], flags={"max_batch": MAX_BATCH})


@pytest.fixture(scope="module")
def server(models):
    server = InProcessServer(create_app(models, Settings(quiet=True, max_response=MAX_RESPONSE, timeout_s=10)))
    yield server
    server.close()


# No subnormal floats: an earlier test in the same process may have set the CPU to flush them to zero
# (training does, for speed), and hypothesis then refuses to generate them.
floats = functools.partial(st.floats, allow_subnormal=False)
odd_numbers = st.one_of(
    floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.just(1e39), st.booleans()
)
# Any text, lone surrogates included: JSON can spell them ("\\ud800"), UTF-8 cannot.
any_text = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=8)
odd_json = st.recursive(
    st.one_of(st.none(), st.booleans(), floats(), st.integers(-(2**70), 2**70), any_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=20,
)


def body_limit(model: str) -> int:
    """What zoo serve reads of a body for ``model`` at MAX_BATCH (protocol.body_bound)."""
    return MAX_BATCH * math.prod(INPUTS[model][1]) * REQUEST_BYTES_PER_VALUE + HEADER_ALLOWANCE


@st.composite
def near_valid_requests(draw):
    """A good request for one model, with some of its fields replaced by odd values."""
    model = draw(st.sampled_from(sorted(INPUTS)))
    name, shape = INPUTS[model]
    rows = draw(st.integers(1, MAX_BATCH + 2))
    values = draw(st.lists(floats(-4, 4, width=32), min_size=1, max_size=8))
    data = [values[i % len(values)] for i in range(rows * math.prod(shape))]
    entry = {"name": name, "shape": [rows, *shape], "datatype": "FP32", "data": data}
    request = {"inputs": [entry]}
    if draw(st.booleans()):
        request["id"] = draw(st.one_of(any_text, odd_json))
    if draw(st.booleans()):
        request["parameters"] = {
            "binary_data_output": draw(st.one_of(st.booleans(), odd_json)),
            **draw(st.dictionaries(any_text, odd_json, max_size=2)),
        }
    for key in draw(st.sets(st.sampled_from(["name", "shape", "datatype", "data", "parameters", "entry"]), max_size=2)):
        if key == "shape":
            entry["shape"] = draw(
                st.one_of(st.lists(st.one_of(st.integers(-3, 2**40), st.booleans()), max_size=5), odd_json)
            )
        elif key == "data":
            entry["data"] = draw(
                st.one_of(st.lists(odd_numbers, max_size=40), odd_json, st.just([[data]]), st.just(data[:-1]))
            )
        elif key == "entry":
            request["inputs"] = draw(st.one_of(odd_json, st.just([entry, entry]), st.just([])))
        else:
            entry[key] = draw(odd_json)
    if draw(st.booleans()):
        request["outputs"] = draw(st.one_of(st.just([{"name": "mu"}]), st.just([{"name": "x_hat"}]), odd_json))
    return model, request


@st.composite
def bodies(draw):
    """(model, body bytes, headers, rows if the request is well formed)."""
    kind = draw(st.sampled_from(["near-valid", "json", "bytes", "binary", "sized"]))
    headers = []
    if kind == "near-valid":
        model, request = draw(near_valid_requests())
        body = json.dumps(request).encode()
    elif kind == "sized":  # a good request, padded with white space to just under or over the body limit
        model = draw(st.sampled_from(sorted(INPUTS)))
        name, shape = INPUTS[model]
        rows = draw(st.integers(1, MAX_BATCH))
        body = json.dumps(
            {
                "inputs": [
                    {
                        "name": name,
                        "shape": [rows, *shape],
                        "datatype": "FP32",
                        "data": [0.5] * (rows * math.prod(shape)),
                    }
                ]
            }
        ).encode()
        body += b" " * max(0, body_limit(model) + draw(st.integers(-64, 64)) - len(body))
    elif kind == "json":
        model, body = draw(st.sampled_from(sorted(INPUTS))), json.dumps(draw(odd_json)).encode()
    elif kind == "bytes":
        model, body = draw(st.sampled_from(sorted(INPUTS))), draw(st.binary(max_size=2048))
    else:
        model, request = draw(near_valid_requests())
        entry = request["inputs"][0] if isinstance(request.get("inputs"), list) and request["inputs"] else {}
        tail = b""
        if isinstance(entry, dict) and "data" in entry:
            values = entry.pop("data")
            try:
                with np.errstate(over="ignore"):  # values past float32's range: inf, which the server refuses
                    tail = np.asarray(values, dtype="<f4").tobytes()
            except (TypeError, ValueError, OverflowError):
                tail = draw(st.binary(max_size=256))
            entry["parameters"] = {"binary_data_size": draw(st.sampled_from([len(tail), len(tail) + 4, -1, "8"]))}
        header = json.dumps(request).encode()
        body = header + tail
        length = draw(
            st.one_of(st.just(str(len(header))), st.integers(-10, len(body) + 10).map(str), st.text(max_size=6))
        )
        headers.append((b"inference-header-content-length", length.encode("utf-8", "surrogatepass")))
    if draw(st.booleans()):
        headers.append(
            (b"content-length", draw(st.one_of(st.just(str(len(body))), st.text("0123456789x", max_size=12))).encode())
        )
    headers += draw(
        st.lists(st.tuples(st.binary(min_size=1, max_size=12).map(bytes.lower), st.binary(max_size=24)), max_size=3)
    )
    return model, body, headers


def requested_rows(body: bytes, headers: list):
    """The rows a body asks for, read the way a client means it (None where there is no telling)."""
    lengths = [v for k, v in headers if k == b"inference-header-content-length"]
    try:
        header = body[: int(lengths[-1])] if lengths else body
        return json.loads(header)["inputs"][0]["shape"][0] if header else 1
    except Exception:
        return None


def requested_id(body: bytes, headers: list):
    lengths = [v for k, v in headers if k == b"inference-header-content-length"]
    try:
        return json.loads(body[: int(lengths[-1])] if lengths else body).get("id")
    except Exception:
        return None


def check_answer(model: str, body: bytes, headers: list, status: int, answer_headers: dict, answer: bytes) -> None:
    assert status == 200 or 400 <= status < 500, (status, answer[:300])
    if len(body) > body_limit(model):
        assert status == 413, (status, answer[:300])
    if status != 200:
        error = json.loads(answer)["error"]
        assert isinstance(error, str) and error and "\n" not in error
        return
    rows = requested_rows(body, headers)
    length = answer_headers.get(b"inference-header-content-length")
    meta = json.loads(answer[: int(length)] if length else answer)
    assert meta["model_name"] == model and meta["outputs"]
    assert meta.get("id") == requested_id(body, headers)
    offset = int(length) if length else len(answer)
    for output in meta["outputs"]:
        assert output["shape"][0] == rows
        count = math.prod(output["shape"])
        if "data" in output:
            assert len(output["data"]) == count
        else:
            assert output["parameters"]["binary_data_size"] == count * 4
            offset += count * 4
    assert offset == len(answer)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=bodies())
def test_any_body_gets_a_4xx_or_exactly_its_rows(server, case):
    model, body, headers = case
    status, answer_headers, answer = server.request("POST", f"/v2/models/{model}/infer", body, headers)
    event(f"status {status}")  # --hypothesis-show-statistics: how often each answer came
    check_answer(model, body, headers, status, answer_headers, answer)


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    server = Server(
        vae_run(tmp_path_factory),
        "--max-batch",
        MAX_BATCH,
        "--max-response-mb",
        MAX_RESPONSE / 2**20,
        "--timeout",
        "10",
        "--quiet",
        log=tmp_path_factory.mktemp("fuzz-log") / "serve.log",
    )
    yield server
    log = server.log_text()
    assert server.stop() == 0
    assert "Traceback" not in log and "error:" not in log, log[-2000:]


TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9a-z-]+")  # a header name HTTP allows
FRAMING = {b"content-length", b"transfer-encoding", b"host", b"connection", b"expect", b"upgrade"}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(case=bodies())
def test_over_http_any_body_gets_a_4xx_or_exactly_its_rows(http_server, case):
    """The same bodies through httptools, uvicorn and the connection layer. Headers HTTP itself
    cannot carry (control bytes, names that are no token) and the framing headers are left to the
    client: httptools refuses the former before the app, and the latter would change the framing."""
    model, body, headers = case
    sent = [(k, v) for k, v in headers if TOKEN.fullmatch(k) and k not in FRAMING and all(32 <= c < 127 for c in v)]
    response = http_server.client.post(f"/v2/models/{model}/infer", content=body, headers=sent)
    check_answer(model, body, sent, response.status_code, dict(response.headers.raw), response.content)


HEAD_LIMIT = 64 * 2**10  # zoo serve's default --max-header-kb
around_the_limit = st.one_of(st.integers(0, 3 * HEAD_LIMIT), st.integers(HEAD_LIMIT - 200, HEAD_LIMIT + 50))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url_pad=around_the_limit, header_pad=around_the_limit, headers=st.integers(0, 40))
def test_over_http_any_head_gets_its_answer_or_a_414_or_431(http_server, url_pad, header_pad, headers):
    """Heads of any size around the limit, a long URL, a long header and many short ones, with a
    good body: a request line past the limit is a 414, a head past it a 431, any other the answer;
    never a 5xx, and the server goes on serving."""
    body = json.dumps({"inputs": [{"name": "z", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 20}]}).encode()
    line = b"POST /v2/models/vae-decoder/infer?pad=%s HTTP/1.1\r\n" % (b"u" * url_pad)
    head = line + b"Host: x\r\nX-Pad: %s\r\n%sContent-Length: %d\r\n\r\n" % (
        b"h" * header_pad,
        b"".join(b"X-Short-%d: v\r\n" % i for i in range(headers)),
        len(body),
    )
    host, port = http_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(head + body)
        except OSError:
            pass  # refused and closed under a long head: the answer is read below all the same
        status = int(read_response(sock).split(b" ", 2)[1])
    expected = 414 if len(line) > HEAD_LIMIT else 431 if len(head) > HEAD_LIMIT else 200
    assert status == expected, (status, len(line), len(head))
    assert http_server.client.get("/v2/health/live").status_code == 200
