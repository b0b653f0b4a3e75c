"""Conformance of the serving settings: a repository of models whose config.pbtxt states each
setting, or leaves it out (Triton then fills in its defaults), is run by `zoo serve` with exactly the
settings a real Triton reports for each model (tests/test_serve_conformance.py asks both servers the
protocol's questions)."""

from dataclasses import asdict

import pytest
import tritonclient.http as triton_http
from conformance_servers import TRITON_BACKEND, Triton
from google.protobuf import text_format
from test_serve_helpers import vae_run
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
