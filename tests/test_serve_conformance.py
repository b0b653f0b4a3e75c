"""Conformance: one model repository served by `zoo serve` and by NVIDIA Triton (2.51, its onnxruntime
backend, built by `bash scripts/triton.sh build`), each asked the same things over the Open Inference
Protocol (KServe v2 REST, with Triton's binary tensor extension), through httpx and through
tritonclient's own HTTP client.

Every test runs against both servers. Where they answer differently, the difference is one entry of
DIFFERENCES (in conformance_servers.py, beside the Triton fixture's helpers), and the assertion
picks the expected answer with ``per_server(served, <entry>, ...)``.
The rule: zoo serve does what Triton does wherever Triton follows the protocol (so zoo serve now
answers ``versions`` in model metadata, ``model_version`` in infer answers and the
``/v2/models/NAME/versions/V/...`` URLs, as Triton does), and keeps its own answer where Triton does
not (a client's malformed data is a 400 in zoo serve, a 500 in Triton).
"""

import json
import re

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from conformance_servers import (
    PARTS,
    ROWS,
    SCORER,
    SMALL,
    SMALL_MAX_BATCH,
    SMALL_VERSION,
    TRITON_BACKEND,
    Reference,
    Served,
    Triton,
    answer_of,
    assert_error,
    assert_matches,
    binary_request,
    body_or_none,
    eps_request,
    infer,
    per_server,
    significant_digits,
    tritonclient_status,
    version_of,
    write_scorer,
)
from test_serve_helpers import Server, conv_run, infer_json, vae_run
from tritonclient.utils import InferenceServerException

from zoo.export.repository import write_model

# -- the repository, the reference answers and the two servers -------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Both seeded, untrained runs' parts, plus SMALL and SCORER: one folder both servers serve."""
    folder = tmp_path_factory.mktemp("conformance") / "models"
    vae = vae_run(tmp_path_factory)
    for run in (vae, conv_run(tmp_path_factory)):
        for part in PARTS:
            write_model(folder, f"{run.name}-{part}", run / f"{part}.onnx")
    write_model(folder, SMALL, vae / "generator.onnx", max_batch=SMALL_MAX_BATCH)
    write_model(folder, SCORER, write_scorer(vae, tmp_path_factory.mktemp("scorer") / "vae"))
    # zoo export writes version 1; a repository may hold another, which both servers must name.
    (folder / SMALL / "1").rename(folder / SMALL / SMALL_VERSION)
    return folder


@pytest.fixture(scope="module")
def reference(repo):
    return Reference(repo)


@pytest.fixture(scope="module", params=["zoo", "triton"])
def served(request, repo, tmp_path_factory):
    """The repository served by one of the two servers; stopped with SIGTERM, which must exit 0."""
    log = tmp_path_factory.mktemp("logs") / f"{request.param}.log"
    if request.param == "zoo":
        server = Server(repo, "--quiet", log=log)
    else:
        if not TRITON_BACKEND.exists():
            pytest.skip("Triton is not built here: run bash scripts/triton.sh build")
        server = Triton(repo, log)
    http = httpx.Client(base_url=server.url, timeout=30)
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        yield Served(request.param, server.url, http, client)
    finally:
        client.close()
        http.close()
        assert server.stop() == 0, server.log_text()[-3000:]


# -- metadata and health ----------------------------------------------------------------------------


def test_server_metadata_names_the_binary_tensor_extension(served):
    meta = served.http.get("/v2").json()
    assert isinstance(meta["name"], str) and isinstance(meta["version"], str)
    assert "binary_tensor_data" in meta["extensions"]
    extras = set(meta["extensions"]) - {"binary_tensor_data"}
    assert bool(extras) == per_server(served, "extensions", zoo=False, triton=True)
    assert served.client.get_server_metadata() == meta


def test_server_is_live_and_ready(served):
    for probe in ("live", "ready"):
        response = served.http.get(f"/v2/health/{probe}")
        assert response.status_code == 200
        assert body_or_none(response) == per_server(served, "health bodies", zoo={probe: True}, triton=None)
    assert served.client.is_server_live() and served.client.is_server_ready()


@pytest.mark.parametrize("version", [None, "1"], ids=["unversioned", "version 1"])
def test_model_metadata(served, version):
    path = "/v2/models/vae-encoder" + (f"/versions/{version}" if version else "")
    meta = served.http.get(path).json()
    assert meta["name"] == "vae-encoder" and meta["platform"] == "onnxruntime_onnx"
    assert meta["versions"] == ["1"]  # the version folder zoo export writes
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert meta["outputs"] == [
        {"name": "mu", "datatype": "FP32", "shape": [-1, 20]},
        {"name": "logvar", "datatype": "FP32", "shape": [-1, 20]},
    ]
    extra = set(meta) - {"name", "versions", "platform", "inputs", "outputs"}
    assert extra == per_server(served, "metadata parameters", zoo={"parameters"}, triton=set())
    assert served.client.get_model_metadata("vae-encoder", version or "") == meta


def test_metadata_of_every_model_has_the_batch_as_minus_one(served, reference, repo):
    for folder in sorted(repo.iterdir()):
        meta = served.http.get(f"/v2/models/{folder.name}").json()
        name, shape = reference.input(folder.name)
        assert meta["inputs"] == [{"name": name, "datatype": "FP32", "shape": [-1, *shape]}]
        outputs = reference.session(folder.name).get_outputs()
        datatypes = {"tensor(float)": "FP32", "tensor(bool)": "BOOL"}
        assert meta["outputs"] == [
            {"name": o.name, "datatype": datatypes[o.type], "shape": reference.served_shape(folder.name, o)}
            for o in outputs
        ]


@pytest.mark.parametrize("path", ["/v2/models/vae-decoder/ready", "/v2/models/vae-decoder/versions/1/ready"])
def test_model_is_ready(served, path):
    response = served.http.get(path)
    assert response.status_code == 200
    assert body_or_none(response) == per_server(
        served, "health bodies", zoo={"name": "vae-decoder", "ready": True}, triton=None
    )
    assert served.client.is_model_ready("vae-decoder") and served.client.is_model_ready("vae-decoder", "1")


@pytest.mark.parametrize("path", ["/v2/models/nope/ready", "/v2/models/vae-decoder/versions/2/ready"])
def test_a_model_or_version_the_server_lacks_is_not_ready(served, path):
    response = served.http.get(path)
    assert_error(response, per_server(served, "not ready status", zoo=404, triton=400))
    assert response.headers["content-type"] == per_server(
        served, "error content type", zoo="application/json", triton="text/plain"
    )
    assert not served.client.is_model_ready("nope") and not served.client.is_model_ready("vae-decoder", "2")


def test_repository_index_lists_every_model_ready(served, repo):
    index = served.http.post("/v2/repository/index").json()
    assert sorted(index, key=lambda m: m["name"]) == [
        {"name": folder.name, "version": version_of(folder.name), "state": "READY"} for folder in sorted(repo.iterdir())
    ]


def test_model_config_is_a_triton_extension(served):
    try:
        config = served.client.get_model_config("vae-encoder")
    except InferenceServerException as exc:
        status = int(exc.status())
    else:
        status = 200
        assert config["max_batch_size"] == 1024 and [i["name"] for i in config["input"]] == ["x"]
    assert status == per_server(served, "model config", zoo=404, triton=200)


# -- inference --------------------------------------------------------------------------------------

# A model of each part, of both runs: a 4-d input, two outputs, a 4-d output; a BOOL output of the batch alone.
MODELS = ["vae-encoder", "vae-decoder", "conv-ae-generator", "conv-ae-encoder", SCORER]


@pytest.mark.parametrize("model", MODELS)
def test_json_infer_matches_onnxruntime(served, reference, model):
    rows = reference.rows(model)
    response = infer(served, model, infer_json(rows, reference.input(model)[0], id="json-1"))
    assert response.headers["content-type"] == "application/json"
    answer, outputs = answer_of(response)
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (model, "1", "json-1")
    expected = reference.outputs(model, rows)  # in the model's order
    assert list(outputs) == per_server(served, "output order", zoo=list(expected), triton=sorted(expected))
    assert_matches(outputs, expected)


@pytest.mark.parametrize("model", MODELS)
def test_binary_infer_matches_onnxruntime(served, reference, model):
    rows = reference.rows(model, seed=1)
    body, headers = binary_request(rows, reference.input(model)[0], parameters={"binary_data_output": True})
    response = infer(served, model, body, headers)
    assert response.headers["content-type"] == "application/octet-stream"
    answer, outputs = answer_of(response)
    assert all("data" not in output for output in answer["outputs"])
    assert "id" not in answer  # none was given
    assert_matches(outputs, reference.outputs(model, rows))


def test_infer_under_the_version_url(served, reference):
    rows = reference.rows("vae-generator", seed=2)
    answer, outputs = answer_of(infer(served, "vae-generator", infer_json(rows, "eps"), version="1"))
    assert answer["model_version"] == "1"
    assert_matches(outputs, reference.outputs("vae-generator", rows))


def test_a_model_in_version_2_is_served_and_named_as_version_2(served, reference):
    assert served.http.get(f"/v2/models/{SMALL}").json()["versions"] == [SMALL_VERSION]
    rows = reference.rows(SMALL)
    for version in (None, SMALL_VERSION):
        answer, outputs = answer_of(infer(served, SMALL, infer_json(rows, "eps"), version=version))
        assert answer["model_version"] == SMALL_VERSION
        assert_matches(outputs, reference.outputs(SMALL, rows))
    assert_error(infer(served, SMALL, infer_json(rows, "eps"), version="1"), 404)
    assert served.client.is_model_ready(SMALL, SMALL_VERSION) and not served.client.is_model_ready(SMALL, "1")
    assert served.client.get_model_metadata(SMALL, SMALL_VERSION)["versions"] == [SMALL_VERSION]


def test_requested_outputs_each_json_or_binary(served, reference):
    x = reference.rows("vae-encoder", seed=3)
    expected = reference.outputs("vae-encoder", x)
    wanted = [{"name": "mu"}, {"name": "logvar", "parameters": {"binary_data": True}}]
    body, headers = binary_request(x, "x", outputs=wanted)
    answer, outputs = answer_of(infer(served, "vae-encoder", body, headers))
    assert list(outputs) == per_server(served, "output order", zoo=["mu", "logvar"], triton=["logvar", "mu"])
    by_name = {output["name"]: output for output in answer["outputs"]}
    assert "binary_data_size" in by_name["logvar"]["parameters"] and "data" not in by_name["logvar"]
    assert "data" in by_name["mu"] and "binary_data_size" not in by_name["mu"].get("parameters", {})
    assert_matches(outputs, expected)
    _, only = answer_of(infer(served, "vae-encoder", infer_json(x, "x", outputs=[{"name": "mu"}])))
    assert_matches(only, {"mu": expected["mu"]})


def test_json_outputs_read_back_as_the_binary_float32s(served, reference):
    rows = reference.rows("vae-decoder", seed=4)
    response = infer(served, "vae-decoder", infer_json(rows, "z"))
    _, from_json = answer_of(response)
    _, binary = answer_of(infer(served, "vae-decoder", infer_json(rows, "z", parameters={"binary_data_output": True})))
    np.testing.assert_array_equal(from_json["x_hat"], binary["x_hat"])  # exactly: JSON loses no float32 digits
    numbers = re.search(r'"data":\[([^\]]*)\]', response.text).group(1).split(",")
    longest = max(significant_digits(number) for number in numbers)
    # Nine significant digits tell every float32 apart; a double written in full takes up to 17.
    assert (longest <= 9) == per_server(served, "json float digits", zoo=True, triton=False)


def test_compression_follows_accept_encoding(served, reference):
    rows = reference.rows("vae-generator")
    request = infer_json(rows, "eps")
    raw = served.http.post("/v2/models/vae-generator/infer", json=request, headers={"Accept-Encoding": "gzip"})
    assert raw.headers.get("content-encoding") == per_server(served, "compression", zoo=None, triton="gzip")
    _, outputs = answer_of(raw)  # httpx has decoded it either way
    assert_matches(outputs, reference.outputs("vae-generator", rows))
    plain = served.http.post("/v2/models/vae-generator/infer", json=request, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


# -- errors -----------------------------------------------------------------------------------------


def test_unknown_model_or_version_is_404(served, reference):
    request = infer_json(reference.rows("vae-generator"), "eps")
    assert_error(served.http.get("/v2/models/nope"), 404)
    assert_error(served.http.get("/v2/models/vae-generator/versions/2"), 404)
    for response in (infer(served, "nope", request), infer(served, "vae-generator", request, version="2")):
        assert_error(response, 404)
        assert response.headers["content-type"] == per_server(
            served, "error content type", zoo="application/json", triton="text/plain"
        )


WRONG_SHAPES = {
    "rows of the wrong width": eps_request([ROWS, 10], [0.5] * ROWS * 10),
    "no batch dimension": eps_request([20], [0.5] * 20),
    "no rows": eps_request([0, 20], []),
}


@pytest.mark.parametrize("case", WRONG_SHAPES)
def test_wrong_shape_is_400(served, case):
    assert_error(infer(served, "vae-generator", WRONG_SHAPES[case]), 400)


def test_wrong_datatype_is_400(served, reference):
    rows = reference.rows("vae-generator")
    for datatype, values in (("FP64", rows.astype(np.float64)), ("INT32", np.ones(rows.shape, np.int32))):
        assert_error(
            infer(served, "vae-generator", eps_request(list(rows.shape), values.ravel().tolist(), datatype)), 400
        )
        assert_error(infer(served, "vae-generator", *binary_request(values, "eps", datatype)), 400)


def test_more_rows_than_the_max_batch_is_400(served, reference):
    fits, over = reference.rows(SMALL, SMALL_MAX_BATCH), reference.rows(SMALL, SMALL_MAX_BATCH + 1)
    assert_matches(answer_of(infer(served, SMALL, infer_json(fits, "eps")))[1], reference.outputs(SMALL, fits))
    assert_error(infer(served, SMALL, infer_json(over, "eps")), 400)
    assert_error(infer(served, SMALL, *binary_request(over, "eps")), 400)


MALFORMED = {  # each the client's fault (see DIFFERENCES["malformed data status"])
    "a value count not matching the shape": json.dumps(eps_request([ROWS, 20], [0.5] * 20)).encode(),
    "strings for numbers": json.dumps(eps_request([1, 20], ["a"] * 20)).encode(),
    "malformed JSON": b'{"inputs": [{"name": "eps", ',
    "a number as id": json.dumps(eps_request([1, 20], [0.5] * 20, id=7)).encode(),
    "a string as binary_data_output": json.dumps(
        eps_request([1, 20], [0.5] * 20, parameters={"binary_data_output": "yes"})
    ).encode(),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_data_is_refused(served, case):
    response = infer(served, "vae-generator", MALFORMED[case], {"Content-Type": "application/json"})
    assert_error(response, per_server(served, "malformed data status", zoo=400, triton=500))


def test_non_finite_json_values(served):
    body = json.dumps(eps_request([1, 20], [float("nan")] + [0.5] * 19)).encode()  # Python writes NaN
    response = infer(served, "vae-generator", body, {"Content-Type": "application/json"})
    if per_server(served, "non-finite values", zoo=False, triton=True):
        assert response.status_code == 200 and "NaN" in response.text
    else:
        assert_error(response, 400)


# -- tritonclient -----------------------------------------------------------------------------------


@pytest.mark.parametrize("binary_in", [True, False], ids=["binary in", "json in"])
@pytest.mark.parametrize("binary_out", [True, False], ids=["binary out", "json out"])
@pytest.mark.parametrize("version", ["", "1"], ids=["unversioned", "version 1"])
def test_tritonclient_infer_matches_onnxruntime(served, reference, binary_in, binary_out, version):
    x = reference.rows("vae-encoder", seed=5)
    expected = reference.outputs("vae-encoder", x)
    tensor = triton_http.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    wanted = [triton_http.InferRequestedOutput(name, binary_data=binary_out) for name in ("mu", "logvar")]
    result = served.client.infer("vae-encoder", [tensor], model_version=version, outputs=wanted, request_id="tc-1")
    answer = result.get_response()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("vae-encoder", "1", "tc-1")
    assert all(("data" in output) != binary_out for output in answer["outputs"])
    assert_matches({name: result.as_numpy(name) for name in ("mu", "logvar")}, expected)


def test_tritonclient_infer_with_every_output_by_default(served, reference):
    eps = reference.rows("conv-ae-generator", seed=6)
    tensor = triton_http.InferInput("eps", list(eps.shape), "FP32")
    tensor.set_data_from_numpy(eps)
    result = served.client.infer("conv-ae-generator", [tensor])
    assert_matches({"x_hat": result.as_numpy("x_hat")}, reference.outputs("conv-ae-generator", eps))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_reads_the_scorers_scores_and_bool_flags(served, reference, binary):
    x = reference.rows(SCORER, n=8, seed=7)
    expected = reference.outputs(SCORER, x)
    assert 0 < expected["anomalous"].sum() < 8  # flags both ways
    tensor = triton_http.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    wanted = [triton_http.InferRequestedOutput(name, binary_data=binary) for name in ("score", "anomalous")]
    result = served.client.infer(SCORER, [tensor], outputs=wanted)
    assert_matches({name: result.as_numpy(name) for name in ("score", "anomalous")}, expected)


def test_tritonclient_errors(served, reference):
    def infer_rows(model, rows, datatype="FP32"):
        tensor = triton_http.InferInput("eps", list(rows.shape), datatype)
        tensor.set_data_from_numpy(rows)
        return lambda: served.client.infer(model, [tensor])

    assert tritonclient_status(lambda: served.client.get_model_metadata("nope")) == 404
    assert tritonclient_status(infer_rows("nope", reference.rows(SMALL))) == 404
    assert tritonclient_status(infer_rows(SMALL, reference.rows(SMALL, SMALL_MAX_BATCH + 1))) == 400
    assert tritonclient_status(infer_rows(SMALL, reference.rows(SMALL).astype(np.float64), "FP64")) == 400
