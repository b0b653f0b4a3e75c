"""`zoo serve` over real HTTP: every route, JSON and binary tensors, every error a client can cause,
the token, the body limit, /metrics and the access log."""

import json
import math

import numpy as np
import pytest
from test_serve_helpers import Server, conv_run, infer_json, metric, vae_run, wait_until

from zoo.export import runtime

BINARY = {"inference-header-content-length"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {"vae": vae_run(tmp_path_factory), "conv-ae": conv_run(tmp_path_factory)}


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    server = Server(runs["vae"], runs["conv-ae"], log=tmp_path_factory.mktemp("log") / "serve.log")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def strict(runs, tmp_path_factory):
    """A token from the environment, no access log, and a 10 KiB body limit."""
    server = Server(
        runs["vae"],
        "--quiet",
        "--max-body-mb",
        "0.01",
        log=tmp_path_factory.mktemp("log") / "strict.log",
        env={"ZOO_SERVE_TOKEN": "s3cret"},
    )
    yield server
    assert server.stop() == 0


def split_binary(response) -> tuple:
    """(JSON header, the bytes after it) of a binary-extension answer."""
    length = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:length]), response.content[length:]


def test_the_banner_lists_each_model_with_its_tensors(server):
    assert any("vae-generator" in line and "eps [-1, 20]" in line for line in server.banner)
    assert any("conv-ae-decoder" in line and "z [-1, 8, 7, 7]" in line for line in server.banner)


def test_server_routes(server):
    meta = server.client.get("/v2").json()
    assert meta["name"] == "autoencoder-zoo" and meta["version"] and "binary_tensor_data" in meta["extensions"]
    assert server.client.get("/v2/health/live").json() == {"live": True}
    assert server.client.get("/v2/health/ready").json() == {"ready": True}
    index = server.client.post("/v2/repository/index").json()
    assert sorted(m["name"] for m in index) == sorted(
        f"{run}-{part}" for run in ("vae", "conv-ae") for part in ("encoder", "decoder", "generator")
    )
    assert all(m["state"] == "READY" for m in index)
    page = server.client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="page.js"' not in page.text and "repository/index" in page.text  # the script is inline


def test_model_metadata_and_ready(server):
    meta = server.client.get("/v2/models/vae-encoder").json()
    assert meta["name"] == "vae-encoder" and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert meta["outputs"] == [
        {"name": "mu", "datatype": "FP32", "shape": [-1, 20]},
        {"name": "logvar", "datatype": "FP32", "shape": [-1, 20]},
    ]
    params = meta["parameters"]
    assert params["zoo.part"] == "encoder" and params["zoo.model"] == "vae"
    assert json.loads(params["zoo.latent_shape"]) == [20] and json.loads(params["zoo.data_shape"]) == [1, 28, 28]
    conv = server.client.get("/v2/models/conv-ae-decoder").json()
    assert conv["inputs"][0]["shape"] == [-1, 8, 7, 7] and conv["outputs"][0]["shape"] == [-1, 1, 28, 28]
    assert server.client.get("/v2/models/conv-ae-decoder/ready").json() == {"name": "conv-ae-decoder", "ready": True}


def test_json_infer_matches_onnxruntime_flat_and_nested(server, runs):
    z = np.random.default_rng(0).standard_normal((3, 20), dtype=np.float32)
    expected = runtime.Decoder(runs["vae"] / "decoder.onnx").decode(z)
    flat = server.client.post("/v2/models/vae-decoder/infer", json=infer_json(z, "z", id="r-1"))
    assert flat.status_code == 200 and flat.headers["content-type"] == "application/json"
    answer = flat.json()
    assert answer["model_name"] == "vae-decoder" and answer["id"] == "r-1"
    (out,) = answer["outputs"]
    assert out["name"] == "x_hat" and out["datatype"] == "FP32" and out["shape"] == [3, 1, 28, 28]
    np.testing.assert_allclose(np.reshape(out["data"], out["shape"]), expected, atol=1e-6)
    nested = {"inputs": [{"name": "z", "shape": [3, 20], "datatype": "FP32", "data": z.tolist()}]}
    answer = server.client.post("/v2/models/vae-decoder/infer", json=nested).json()
    assert "id" not in answer
    np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], (3, 1, 28, 28)), expected, atol=1e-6)


def test_requested_outputs_and_mixed_binary(server, runs):
    x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
    expected = runtime.Encoder(runs["vae"] / "encoder.onnx").run(x)
    only = server.client.post("/v2/models/vae-encoder/infer", json=infer_json(x, "x", outputs=[{"name": "logvar"}]))
    assert [o["name"] for o in only.json()["outputs"]] == ["logvar"]
    request = infer_json(x, "x", outputs=[{"name": "mu", "parameters": {"binary_data": True}}, {"name": "logvar"}])
    response = server.client.post("/v2/models/vae-encoder/infer", json=request)
    assert response.headers["content-type"] == "application/octet-stream"
    header, tail = split_binary(response)
    mu, logvar = header["outputs"]
    assert mu["parameters"]["binary_data_size"] == len(tail) == 2 * 20 * 4 and "data" not in mu
    np.testing.assert_allclose(np.frombuffer(tail, "<f4").reshape(2, 20), expected["mu"], atol=1e-6)
    np.testing.assert_allclose(np.reshape(logvar["data"], (2, 20)), expected["logvar"], atol=1e-6)


def binary_request(rows: np.ndarray, name: str, **parameters) -> tuple:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "parameters": parameters,
        }
    ).encode()
    return header + rows.astype("<f4").tobytes(), {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def test_binary_tensors_both_ways(server, runs):
    eps = np.random.default_rng(2).standard_normal((4, 392), dtype=np.float32)
    expected = runtime.Generator(runs["conv-ae"] / "generator.onnx").generate(eps)
    body, headers = binary_request(eps, "eps", binary_data_output=True)
    response = server.client.post("/v2/models/conv-ae-generator/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    header, tail = split_binary(response)
    assert header["outputs"][0]["shape"] == [4, 1, 28, 28]
    np.testing.assert_allclose(np.frombuffer(tail, "<f4").reshape(4, 1, 28, 28), expected, atol=1e-6)
    body, headers = binary_request(eps, "eps")  # binary in, JSON out
    answer = server.client.post("/v2/models/conv-ae-generator/infer", content=body, headers=headers).json()
    np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], (4, 1, 28, 28)), expected, atol=1e-6)


def test_raw_binary_request_is_one_row(server, runs):
    z = np.random.default_rng(3).standard_normal(20, dtype=np.float32)
    response = server.client.post(
        "/v2/models/vae-decoder/infer", content=z.tobytes(), headers={"Inference-Header-Content-Length": "0"}
    )
    header, tail = split_binary(response)
    assert header["outputs"][0]["shape"] == [1, 1, 28, 28]
    expected = runtime.Decoder(runs["vae"] / "decoder.onnx").decode(z[None])
    np.testing.assert_allclose(np.frombuffer(tail, "<f4").reshape(1, 1, 28, 28), expected, atol=1e-6)


def z_request(**changes) -> dict:
    entry = {"name": "z", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 20, **changes}
    return {"inputs": [entry]}


BAD_REQUESTS = {
    "wrong shape": z_request(shape=[1, 21], data=[0.5] * 21),
    "wrong rank": z_request(shape=[20]),
    "zero rows": z_request(shape=[0, 20], data=[]),
    "wrong datatype": z_request(datatype="FP64"),
    "too few values": z_request(data=[0.5] * 19),
    "too many values": z_request(data=[0.5] * 21),
    "ragged nesting": z_request(data=[[0.5] * 10, [0.5] * 9]),
    "strings": z_request(data=["0.5"] * 20),
    "nulls": z_request(data=[None] * 20),
    "overflows float32": z_request(data=[1e39] + [0.5] * 19),
    "unknown input": z_request(name="x"),
    "no data": {"inputs": [{"name": "z", "shape": [1, 20], "datatype": "FP32"}]},
    "two inputs": {"inputs": [z_request()["inputs"][0]] * 2},
    "inputs not a list": {"inputs": {"name": "z"}},
    "unknown output": {**z_request(), "outputs": [{"name": "nope"}]},
    "id not a string": {**z_request(), "id": 7},
    "binary flag not a bool": {**z_request(), "parameters": {"binary_data_output": "yes"}},
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_requests_are_400_with_an_error(server, case):
    response = server.client.post("/v2/models/vae-decoder/infer", json=BAD_REQUESTS[case])
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["error"], str) and response.json()["error"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_values_are_400(server, literal):
    body = json.dumps(z_request()).replace("0.5", literal, 1)
    response = server.client.post("/v2/models/vae-decoder/infer", content=body)
    assert response.status_code == 400 and "non-finite" in response.json()["error"]


@pytest.mark.parametrize(
    "body, headers",
    [
        (b"{not json", {}),
        (b"[1, 2]", {}),
        (b"\xff\xfe", {}),
        (json.dumps(z_request()).encode(), {"Inference-Header-Content-Length": "99999"}),
        (json.dumps(z_request()).encode(), {"Inference-Header-Content-Length": "ten"}),
        (
            json.dumps(z_request()).encode() + b"trailing",
            {"Inference-Header-Content-Length": str(len(json.dumps(z_request())))},
        ),
    ],
)
def test_malformed_bodies_are_400(server, body, headers):
    response = server.client.post("/v2/models/vae-decoder/infer", content=body, headers=headers)
    assert response.status_code == 400 and response.json()["error"]


def test_binary_errors_are_400(server):
    z = np.zeros((1, 20), np.float32)
    body, headers = binary_request(z, "z")
    short = server.client.post("/v2/models/vae-decoder/infer", content=body[:-4], headers=headers)
    assert short.status_code == 400 and "ends before" in short.json()["error"]
    z[0, 3] = np.nan
    body, headers = binary_request(z, "z")
    nan = server.client.post("/v2/models/vae-decoder/infer", content=body, headers=headers)
    assert nan.status_code == 400 and "non-finite" in nan.json()["error"]
    wrong_size = server.client.post(
        "/v2/models/vae-decoder/infer", content=b"\0" * 12, headers={"Inference-Header-Content-Length": "0"}
    )
    assert wrong_size.status_code == 400


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/nope/ready"),
        ("POST", "/v2/models/nope/infer"),
        ("POST", "/v2/models/..%2F..%2Fetc%2Fpasswd/infer"),
        ("GET", "/v2/nothing-here"),
    ],
)
def test_unknown_models_and_routes_are_404(server, method, path):
    response = server.client.request(method, path, json=z_request())
    assert response.status_code == 404 and response.json()["error"]


def test_wrong_method_is_a_json_error(server):
    response = server.client.get("/v2/models/vae-decoder/infer")
    assert response.status_code == 405 and response.json()["error"]


def test_metrics_count_requests_errors_and_batches(server):
    server.client.post("/v2/models/vae-generator/infer", json=infer_json(np.zeros((2, 20), np.float32), "eps"))
    server.client.post("/v2/models/vae-generator/infer", json={"inputs": []})
    server.client.get("/v2/models/made-up-name")
    text = server.client.get("/metrics").text
    assert metric(text, "zoo_serve_requests_total", model="vae-generator", status="200") >= 1
    assert metric(text, "zoo_serve_requests_total", model="vae-generator", status="400") >= 1
    assert metric(text, "zoo_serve_errors_total", model="vae-generator", status="400") >= 1
    assert metric(text, "zoo_serve_errors_total", model="", status="404") >= 1
    assert metric(text, "zoo_serve_batch_rows_count", model="vae-generator") >= 1
    assert metric(text, "zoo_serve_queue_seconds_count", model="vae-generator") >= 1
    assert metric(text, "zoo_serve_request_seconds_count", model="vae-generator") >= 2
    assert 'zoo_serve_queue_depth{model="conv-ae-decoder"} 0.0' in text
    assert "made-up-name" not in text  # a client cannot invent label values


def test_access_log_has_one_line_per_request(server):
    server.client.get("/v2/models/vae-decoder/ready", params={"probe": "1"})

    def lines():  # the line is written just after the answer is sent
        return [line for line in server.log_text().splitlines() if "/v2/models/vae-decoder/ready" in line]

    assert wait_until(lines)
    lines = lines()
    assert '"GET /v2/models/vae-decoder/ready HTTP/1.1" 200' in lines[-1] and lines[-1].endswith(" ms")


def test_token_guards_every_route_but_health_and_page(strict):
    client = strict.client
    for path in ("/v2", "/v2/models/vae-decoder", "/v2/models/vae-decoder/ready", "/metrics"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    refused = client.post("/v2/models/vae-decoder/infer", json=z_request())
    assert refused.status_code == 401 and refused.json()["error"] and refused.headers["www-authenticate"] == "Bearer"
    assert (
        client.post("/v2/models/vae-decoder/infer", json=z_request(), headers={"Authorization": "s3cret"}).status_code
        == 401
    )
    assert (
        client.post(
            "/v2/models/vae-decoder/infer", json=z_request(), headers={"Authorization": "Bearer s3cret"}
        ).status_code
        == 200
    )
    for path in ("/v2/health/live", "/v2/health/ready", "/"):
        assert client.get(path).status_code == 200
    assert any("token required" in line for line in strict.banner)


def test_body_limit_is_413_with_or_without_a_length(strict):
    auth = {"Authorization": "Bearer s3cret"}
    rows = math.ceil(0.01 * 2**20 / (20 * 4)) + 1  # just over 10 KiB of binary floats
    body, headers = binary_request(np.zeros((rows, 20), np.float32), "z")
    sized = strict.client.post("/v2/models/vae-decoder/infer", content=body, headers={**headers, **auth})
    assert sized.status_code == 413 and sized.json()["error"]
    chunked = strict.client.post(
        "/v2/models/vae-decoder/infer", content=iter([body[:5000], body[5000:]]), headers={**headers, **auth}
    )
    assert chunked.status_code == 413
    small, headers = binary_request(np.zeros((2, 20), np.float32), "z")
    assert (
        strict.client.post("/v2/models/vae-decoder/infer", content=small, headers={**headers, **auth}).status_code
        == 200
    )


def test_quiet_writes_no_access_log(strict):
    strict.client.get("/v2/health/live")
    assert "/v2/health/live" not in strict.log_text()
