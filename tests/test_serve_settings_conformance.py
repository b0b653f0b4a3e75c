"""Conformance of the serving settings: a repository of models whose config.pbtxt states each
setting, or leaves it out (Triton then fills in its defaults), is run by `zoo serve` with exactly the
settings a real Triton reports for each model (tests/test_serve_conformance.py asks both servers the
protocol's questions)."""

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import httpx
import onnx
import pytest
import tritonclient.http as triton_http
from conformance_servers import TRITON_BACKEND, Triton
from google.protobuf import text_format
from test_serve_helpers import Server, metric, vae_run
from tritonclient.grpc import model_config_pb2

from zoo.export.repository import write_model

# Each model: the settings zoo export writes, then an edit of the parsed config as a user might make.
SETTING_CASES = {
    "exported-defaults": ({}, None),
    "exported-delay-0": ({"max_delay_ms": 0}, None),
    "exported-every-setting": (
        {"max_batch": 8, "max_delay_ms": 0.5, "instances": 3, "intra_op_threads": 1, "inter_op_threads": 2},
        None,
    ),
    "empty-batching-block": (
        {},
        lambda c: (c.ClearField("instance_group"), c.ClearField("dynamic_batching"), c.dynamic_batching.SetInParent()),
    ),
    "no-batching-block": ({}, lambda c: c.ClearField("dynamic_batching")),
    # Triton completes a file without outputs, and then adds dynamic_batching itself (max batch 8).
    "no-batching-block-no-outputs": (
        {"max_batch": 8},
        lambda c: (c.ClearField("dynamic_batching"), c.ClearField("output")),
    ),
    "groups-without-counts": (
        {},
        lambda c: (
            c.ClearField("instance_group"),
            c.instance_group.add(kind=AUTO),
            c.instance_group.add(kind=CPU),
            c.instance_group.add(count=3, kind=CPU),
        ),
    ),
}
AUTO, CPU = model_config_pb2.ModelInstanceGroup.KIND_AUTO, model_config_pb2.ModelInstanceGroup.KIND_CPU


def triton_settings(config: dict) -> dict:
    """The settings Triton runs a model with, from its model configuration (GET .../config: the file
    after Triton filled in its defaults), in the names of zoo.export.serving_settings."""
    parameters = config.get("parameters", {})
    return {
        "max_batch": config["max_batch_size"],
        "max_delay_ms": int(config.get("dynamic_batching", {}).get("max_queue_delay_microseconds", 0)) / 1000,
        "instances": sum(group["count"] for group in config["instance_group"]),
        "intra_op_threads": int(parameters.get("intra_op_thread_count", {}).get("string_value", 0)),
        "inter_op_threads": int(parameters.get("inter_op_thread_count", {}).get("string_value", 0)),
        "dynamic_batching": "dynamic_batching" in config,
    }


def test_each_serving_setting_means_in_zoo_serve_what_it_means_in_triton(tmp_path_factory, tmp_path):
    """Where config.pbtxt states a setting and where it leaves one out (Triton then fills in its
    default: no delay, two onnxruntime instances per CPU group), zoo serve runs each model with the
    settings Triton reports for it."""
    if not TRITON_BACKEND.exists():
        pytest.skip("Triton is not built here: run bash scripts/triton.sh build")
    from zoo.serve.inference.models import load_models

    folder = tmp_path / "models"
    generator = vae_run(tmp_path_factory) / "generator.onnx"
    for name, (settings, edit) in SETTING_CASES.items():
        model = write_model(folder, name, generator, **settings)
        if edit is not None:
            config = text_format.Parse((model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
            edit(config)
            (model / "config.pbtxt").write_text(text_format.MessageToString(config))
    zoo_served = {name: asdict(model.serving) for name, model in load_models([folder]).items()}
    triton = Triton(folder, tmp_path / "triton.log")
    try:
        client = triton_http.InferenceServerClient(triton.url.removeprefix("http://"))
        triton_served = {name: triton_settings(client.get_model_config(name)) for name in SETTING_CASES}
        client.close()
    finally:
        assert triton.stop() == 0, triton.log_text()[-3000:]
    assert zoo_served == triton_served
    assert triton_served["exported-delay-0"]["max_delay_ms"] == 0  # the case that was 2 ms in zoo serve
    assert triton_served["empty-batching-block"]["instances"] == 2  # and the one that was 1 instance


CONCURRENT = 12
ONE_ROW = {"inputs": [{"name": "eps", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 20}]}


def calls_for_requests_at_once(url: str, name: str, calls) -> float:
    """The calls a server ran for CONCURRENT one-row requests to ``name`` sent at once; ``calls()``
    reads the server's own count."""
    before = calls()

    def post(_):
        return httpx.post(f"{url}/v2/models/{name}/infer", json=ONE_ROW, timeout=60).status_code

    with ThreadPoolExecutor(CONCURRENT) as pool:
        statuses = list(pool.map(post, range(CONCURRENT)))
    assert statuses == [200] * CONCURRENT, statuses
    return calls() - before


def triton_executions(client, name: str) -> float:
    return client.get_inference_statistics(name)["model_stats"][0]["execution_count"]


def zoo_calls(server, name: str) -> float:
    return metric(server.client.get("/metrics").text, "zoo_serve_batch_rows_count", model=name)


def test_a_config_without_dynamic_batching_runs_each_request_alone_as_triton_does(tmp_path_factory, tmp_path):
    """A config.pbtxt without dynamic_batching: Triton runs each request in a call of its own, unless
    its onnxruntime backend completes the file (it leaves out its outputs) and adds the block itself.
    Twelve one-row requests at once to a model taking about 0.2 s a call (max batch 8, one instance)
    run in twelve calls on both servers without the block, and in a few with it, or when completed."""
    if not TRITON_BACKEND.exists():
        pytest.skip("Triton is not built here: run bash scripts/triton.sh build")
    from benchmarks.serving.slow_model import calibrated

    generator = vae_run(tmp_path_factory) / "generator.onnx"
    slow, _ = calibrated(generator, tmp_path / "slow", 0.2)
    model = onnx.load(slow)
    model.ir_version = onnx.load(generator).ir_version  # the exported file's: Triton's onnxruntime is older
    onnx.save(model, slow)
    folder = tmp_path / "models"
    edits = {
        "batched": None,
        "alone": lambda c: c.ClearField("dynamic_batching"),
        "completed": lambda c: (c.ClearField("dynamic_batching"), c.ClearField("output")),
    }
    for name, edit in edits.items():
        model = write_model(folder, name, slow, max_batch=8, max_delay_ms=0)
        if edit is not None:
            config = text_format.Parse((model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
            edit(config)
            (model / "config.pbtxt").write_text(text_format.MessageToString(config))
    counted = {}
    triton = Triton(folder, tmp_path / "triton.log")
    try:
        client = triton_http.InferenceServerClient(triton.url.removeprefix("http://"))
        for name in edits:
            calls = functools.partial(triton_executions, client, name)
            counted["triton", name] = calls_for_requests_at_once(triton.url, name, calls)
        client.close()
    finally:
        assert triton.stop() == 0, triton.log_text()[-3000:]
    server = Server(folder, "--quiet", log=tmp_path / "serve.log")
    try:
        assert any("each request alone" in line for line in server.banner)
        for name in edits:
            counted["zoo", name] = calls_for_requests_at_once(
                server.url, name, functools.partial(zoo_calls, server, name)
            )
    finally:
        assert server.stop() == 0
    for kind in ("triton", "zoo"):
        assert counted[kind, "alone"] == CONCURRENT, counted  # one call per request
        assert counted[kind, "batched"] <= CONCURRENT / 2, counted  # queued requests shared calls
        assert counted[kind, "completed"] <= CONCURRENT / 2, counted
