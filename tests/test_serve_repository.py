"""`zoo export RUN --repository DIR` writes Triton's model repository; `zoo serve DIR` serves it,
and each config.pbtxt is one Triton's own ModelConfig schema accepts, naming exactly the tensors of
its model.onnx."""

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

import zoo
from test_serve_helpers import Server, conv_run, vae_run
from zoo.cli import cli
from zoo.export import repository

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
    assert sorted(p.name for p in repo.iterdir()) == sorted(f"{run}-{part}" for run in ("vae", "conv-ae") for part in PARTS)
    for model in repo.iterdir():
        assert sorted(p.name for p in model.iterdir()) == ["1", "config.pbtxt"]
        assert [p.name for p in (model / "1").iterdir()] == ["model.onnx"]  # no temporaries left behind


def tensors(values) -> list:
    return [(t.name, t.type.tensor_type.elem_type, [d.dim_value if d.HasField("dim_value") else -1
                                                    for d in t.type.tensor_type.shape.dim][1:]) for t in values]


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
        assert [(t.name, t.data_type, list(t.dims)) for t in declared] == \
               [(name, model_config_pb2.TYPE_FP32, dims) for name, elem, dims in tensors(actual) if elem == fp32]
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
