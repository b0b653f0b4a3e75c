"""`zoo export RUN --repository DIR` writes Triton's model repository; `zoo serve DIR` serves it,
and each config.pbtxt is one Triton's own ModelConfig schema accepts, naming exactly the tensors of
its model.onnx."""

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from test_serve_helpers import Server, conv_run, vae_run
from tritonclient.grpc import model_config_pb2

import zoo
from zoo.cli import cli
from zoo.export import repository
from zoo.export.serving_settings import DEFAULTS

PARTS = ("encoder", "decoder", "generator")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Both runs exported into one repository through the CLI, the VAE twice (it replaces itself)."""
    folder = tmp_path_factory.mktemp("repo") / "models"
    for run in (vae_run(tmp_path_factory), conv_run(tmp_path_factory), vae_run(tmp_path_factory)):
        result = CliRunner().invoke(cli, ["export", str(run), "--repository", str(folder)])
        assert result.exit_code == 0, result.output
        assert f"{folder / (run.name + '-decoder')}/config.pbtxt" in result.output
    return folder


def test_layout_holds_one_folder_per_part(repo):
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        f"{run}-{part}" for run in ("vae", "conv-ae") for part in PARTS
    )
    for model in repo.iterdir():
        assert sorted(p.name for p in model.iterdir()) == ["1", "config.pbtxt"]
        assert [p.name for p in (model / "1").iterdir()] == ["model.onnx"]  # no temporaries left behind


def tensors(values) -> list:
    return [
        (
            t.name,
            t.type.tensor_type.elem_type,
            [d.dim_value if d.HasField("dim_value") else -1 for d in t.type.tensor_type.shape.dim][1:],
        )
        for t in values
    ]


@pytest.mark.parametrize("run", ["vae", "conv-ae"])
@pytest.mark.parametrize("part", PARTS)
def test_config_parses_as_triton_model_config_and_matches_the_onnx(repo, run, part):
    folder = repo / f"{run}-{part}"
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == folder.name and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == repository.MAX_BATCH_SIZE and config.HasField("dynamic_batching")
    graph = onnx.load(folder / "1" / "model.onnx").graph
    fp32 = onnx.TensorProto.FLOAT
    for declared, actual in ((config.input, graph.input), (config.output, graph.output)):
        assert [(t.name, t.data_type, list(t.dims)) for t in declared] == [
            (name, model_config_pb2.TYPE_FP32, dims) for name, elem, dims in tensors(actual) if elem == fp32
        ]
        assert len(declared) == len(actual)  # every tensor of the file, and only those


def test_find_models_serves_the_highest_version(repo, tmp_path):
    found = repository.find_models(repo)
    assert found["vae-decoder"] == repo / "vae-decoder" / "1" / "model.onnx"
    assert repository.is_repository(repo) and not repository.is_repository(tmp_path)
    model = tmp_path / "m"
    for version in ("1", "3", "10"):
        (model / version).mkdir(parents=True)
    for version in ("1", "3"):
        (model / version / "model.onnx").write_bytes(b"")
    assert repository.model_file(model) == model / "3" / "model.onnx"  # 10 holds no model.onnx


def test_serve_a_repository_under_its_folder_names(repo, tmp_path):
    server = Server(repo, log=tmp_path / "serve.log")
    try:
        names = sorted(m["name"] for m in server.client.post("/v2/repository/index").json())
        assert names == sorted(p.name for p in repo.iterdir())
        z = np.zeros((2, 8, 7, 7), np.float32)
        request = {"inputs": [{"name": "z", "shape": [2, 8, 7, 7], "datatype": "FP32", "data": z.ravel().tolist()}]}
        answer = server.client.post("/v2/models/conv-ae-decoder/infer", json=request).json()
        assert answer["outputs"][0]["shape"] == [2, 1, 28, 28]
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "a b"])
def test_unsafe_model_names_are_refused(name):
    with pytest.raises(zoo.ZooError, match="must start with a letter or digit"):
        repository.check_name(name)


# config.pbtxt is the configuration: what `zoo export` writes, `read_config` reads back, and what it
# cannot honour it refuses by file and field.


def session_of(model_folder):
    return onnxruntime.InferenceSession(str(model_folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def parse(model_folder):
    return text_format.Parse((model_folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def test_what_zoo_export_writes_reads_back_as_the_defaults(repo):
    """Each default Triton would not apply by itself is written out: 2 ms (Triton's is 0) and one
    instance (Triton runs two of an onnxruntime model on the CPU); the thread counts are Triton's."""
    for path in repository.find_models(repo).values():
        folder = path.parent.parent
        assert repository.read_config(folder, session_of(folder)) == repository.ServingConfig(
            max_batch=1024,
            max_delay_ms=2.0,
            instances=1,
            intra_op_threads=0,
            inter_op_threads=0,
            left_out=frozenset({"intra_op_threads", "inter_op_threads"}),
        )
        config = parse(folder)
        assert config.dynamic_batching.max_queue_delay_microseconds == 2000
        assert [(g.count, g.kind) for g in config.instance_group] == [
            (1, model_config_pb2.ModelInstanceGroup.KIND_AUTO)
        ]
        assert not config.parameters  # onnxruntime's own thread counts, in Triton as in zoo serve


def test_the_defaults_are_what_zoo_serve_runs_without_a_repository(repo):
    from zoo.serve.inference.models import Serving, load_models

    folder = repo / "vae-generator"
    from_repository = load_models([repo])["vae-generator"].serving
    from_file = load_models([folder / "1" / "model.onnx"])["vae-generator"].serving
    assert from_repository == from_file == Serving()


@pytest.mark.parametrize(
    "settings",
    [
        dict(max_batch=1),
        dict(max_batch=8, max_delay_ms=2.5, instances=3, intra_op_threads=2),
        dict(max_batch=65536, max_delay_ms=0.0125, instances=64, intra_op_threads=0, inter_op_threads=5),
        dict(max_delay_ms=0, instances=2),
    ],
)
def test_written_settings_round_trip(repo, tmp_path, settings):
    onnx_file = tmp_path / "generator.onnx"
    onnx_file.write_bytes((repo / "vae-generator" / "1" / "model.onnx").read_bytes())
    folder = repository.write_model(tmp_path / "models", "gen", onnx_file, **settings)
    read = repository.read_config(folder, session_of(folder))
    expected = {**DEFAULTS, **settings, "max_delay_ms": round(settings.get("max_delay_ms", 2) * 1000) / 1000}
    left_out = {"intra_op_threads", "inter_op_threads"} - set(settings)
    assert read == repository.ServingConfig(**expected, left_out=frozenset(left_out))
    config = parse(folder)  # what Triton itself reads
    assert config.name == "gen" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == expected["max_batch"] and config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == round(expected["max_delay_ms"] * 1000)
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (expected["instances"], model_config_pb2.ModelInstanceGroup.KIND_AUTO)
    ]
    assert "kind" not in (folder / "config.pbtxt").read_text()  # Triton picks the device
    written = {"intra_op_thread_count": "intra_op_threads", "inter_op_thread_count": "inter_op_threads"}
    assert {k: v.string_value for k, v in config.parameters.items()} == {
        key: str(settings[name]) for key, name in written.items() if name in settings
    }


def test_a_delay_of_0_is_written_out_and_read_as_0(repo, tmp_path):
    """proto3 leaves a zero out of the text; the file says 0 all the same, and both readers agree."""
    folder = repository.write_model(
        tmp_path / "models", "gen", repo / "vae-generator" / "1" / "model.onnx", max_delay_ms=0
    )
    text = (folder / "config.pbtxt").read_text()
    assert "dynamic_batching {\n  max_queue_delay_microseconds: 0\n}" in text
    assert parse(folder).dynamic_batching.max_queue_delay_microseconds == 0
    assert repository.read_config(folder, session_of(folder)).max_delay_ms == 0


@pytest.mark.parametrize(
    "settings",
    [dict(max_batch=0), dict(max_delay_ms=1001), dict(instances=0), dict(instances=65), dict(intra_op_threads=-1)],
)
def test_out_of_range_settings_are_not_written(repo, tmp_path, settings):
    with pytest.raises(zoo.ZooError, match="must be"):
        repository.write_model(tmp_path / "models", "gen", repo / "vae-generator" / "1" / "model.onnx", **settings)
    assert not (tmp_path / "models").exists()


def test_export_flags_land_in_config_pbtxt(tmp_path_factory, tmp_path):
    folder = tmp_path / "models"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            str(conv_run(tmp_path_factory)),
            "--repository",
            str(folder),
            "--max-batch",
            "64",
            "--max-delay-ms",
            "1.5",
            "--threads",
            "1",
            "--instances",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    for part in PARTS:
        model = folder / f"conv-ae-{part}"
        config = parse(model)
        assert config.max_batch_size == 64 and config.dynamic_batching.max_queue_delay_microseconds == 1500
        assert [g.count for g in config.instance_group] == [2]
        assert config.parameters["intra_op_thread_count"].string_value == "1"
        assert repository.read_config(model, session_of(model)) == repository.ServingConfig(
            64, 1.5, 2, 1, 0, left_out=frozenset({"inter_op_threads"})
        )


@pytest.mark.parametrize(
    "flag",
    [["--max-batch", "8"], ["--max-delay-ms", "2"], ["--threads", "1"], ["--instances", "2"], ["--max-batch", "1024"]],
)
def test_serving_flags_without_a_repository_are_an_error(tmp_path_factory, flag):
    run = vae_run(tmp_path_factory)
    before = {p.name: p.stat().st_mtime_ns for p in run.glob("*.onnx")}
    result = CliRunner().invoke(cli, ["export", str(run), *flag])
    assert result.exit_code == 2 and f"{flag[0]} set what config.pbtxt says; give --repository" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.onnx")} == before  # refused before exporting


@pytest.mark.parametrize(
    "flag", [["--max-batch", "0"], ["--max-delay-ms", "1000.5"], ["--threads", "-1"], ["--instances", "65"]]
)
def test_serving_flags_out_of_range_are_usage_errors(tmp_path, flag):
    result = CliRunner().invoke(cli, ["export", str(tmp_path), "--repository", str(tmp_path / "m"), *flag])
    assert result.exit_code == 2 and flag[0] in result.output
