"""`zoo export RUN --repository DIR` writes Triton's model repository; `zoo serve DIR` serves it,
and each config.pbtxt is one Triton's own ModelConfig schema accepts, naming exactly the tensors of
its model.onnx."""

import shutil

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


@pytest.fixture
def generator(repo, tmp_path):
    """A private copy of vae-generator (eps [20] -> x_hat [1, 28, 28]) whose config a test may rewrite."""
    return shutil.copytree(repo / "vae-generator", tmp_path / "models" / "vae-generator")


def rewrite(model_folder, edit) -> None:
    """Apply ``edit`` to the parsed config (or, given a string, replace the file's text with it)."""
    if isinstance(edit, str):
        (model_folder / "config.pbtxt").write_text(edit)
        return
    config = parse(model_folder)
    edit(config)
    (model_folder / "config.pbtxt").write_text(text_format.MessageToString(config))


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


@pytest.mark.parametrize("block", ["dynamic_batching { }", "dynamic_batching { max_queue_delay_microseconds: 0 }", ""])
def test_what_triton_reads_as_no_delay_zoo_serve_reads_as_no_delay(generator, block):
    """Triton's delay is 0 when the field, or the whole block, is left out; so is zoo serve's."""
    rewrite(generator, f'platform: "onnxruntime_onnx"\nmax_batch_size: 8\n{block}\n')
    assert repository.read_config(generator, session_of(generator)).max_delay_ms == 0


@pytest.mark.parametrize(
    "groups, instances",
    [
        ("", 2),  # no instance_group: Triton's default for an onnxruntime model on the CPU
        ("instance_group { kind: KIND_CPU }", 2),
        ("instance_group [ { count: 3 }, { kind: KIND_AUTO } ]", 5),
        ("instance_group { count: 1 }", 1),
    ],
)
def test_instance_counts_are_read_as_triton_counts_them(generator, groups, instances):
    rewrite(generator, f'platform: "onnxruntime_onnx"\nmax_batch_size: 8\n{groups}\n')
    read = repository.read_config(generator, session_of(generator))
    assert read.instances == instances and ("instances" in read.left_out) == (not groups)


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


def input_dims(config, dims):
    config.input[0].ClearField("dims")
    config.input[0].dims.extend(dims)


def gpu_group(config):
    config.instance_group.add(kind=model_config_pb2.ModelInstanceGroup.KIND_GPU)


SEQUENCE = 'name: "vae-generator"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\nsequence_batching { }\n'
REFUSED = {
    "unsupported field": (SEQUENCE, "field sequence_batching is not supported by zoo serve (it honours name, "),
    "unsupported sub-field": (
        lambda c: c.dynamic_batching.preferred_batch_size.append(4),
        "field dynamic_batching.preferred_batch_size is not supported",
    ),
    "GPU instances": (gpu_group, "field instance_group.kind KIND_GPU is not supported"),
    "GPU ids": (lambda c: c.instance_group.add(count=1, gpus=[0]), "field instance_group.gpus is not supported"),
    "negative count": (lambda c: c.instance_group.add(count=-2), "instance_group.count is -2"),
    "too many instances": (lambda c: c.instance_group.add(count=64), "instance_group counts add up to 65"),
    "unknown parameter": (
        lambda c: c.parameters["enable_mem_arena"].MergeFrom(model_config_pb2.ModelParameter(string_value="1")),
        "field parameters key 'enable_mem_arena' is not supported",
    ),
    "word for threads": (
        lambda c: c.parameters["intra_op_thread_count"].MergeFrom(model_config_pb2.ModelParameter(string_value="two")),
        "parameters intra_op_thread_count is 'two'",
    ),
    "negative threads": (
        lambda c: c.parameters["inter_op_thread_count"].MergeFrom(model_config_pb2.ModelParameter(string_value="-1")),
        "parameters inter_op_thread_count is '-1'",
    ),
    "no batch dimension": (lambda c: c.ClearField("max_batch_size"), "max_batch_size is 0; zoo serve needs 1 or more"),
    "batch too big": (lambda c: setattr(c, "max_batch_size", 65537), "max_batch_size is 65537"),
    "wrong name": (
        lambda c: setattr(c, "name", "other"),
        "name is 'other'; it must be the folder's name, 'vae-generator'",
    ),
    "other platform": (
        lambda c: setattr(c, "platform", "tensorflow_savedmodel"),
        "platform is 'tensorflow_savedmodel'",
    ),
    "other backend": (lambda c: setattr(c, "backend", "python"), "backend is 'python'"),
    "wrong dims": (lambda c: input_dims(c, [21]), "input eps has dims [21]; model.onnx has [20]"),
    "wrong rank": (
        lambda c: c.output[0].dims.append(1),
        "output x_hat has dims [1, 28, 28, 1]; model.onnx has [1, 28, 28]",
    ),
    "wrong type": (
        lambda c: setattr(c.input[0], "data_type", model_config_pb2.TYPE_FP16),
        "input eps has data_type TYPE_FP16; model.onnx has TYPE_FP32",
    ),
    "wrong tensor name": (lambda c: setattr(c.input[0], "name", "z"), "input names ['z']; model.onnx has ['eps']"),
    "tensor reshape": (lambda c: c.input[0].reshape.shape.append(20), "field input.reshape is not supported"),
    "several versions": (lambda c: c.version_policy.all.SetInParent(), "version_policy must be latest"),
    "other model file": (lambda c: setattr(c, "default_model_filename", "m.onnx"), "field default_model_filename"),
    "long delay": (
        lambda c: setattr(c.dynamic_batching, "max_queue_delay_microseconds", 2_000_000),
        "dynamic_batching.max_queue_delay_microseconds is 2000000",
    ),
    "syntax error": (
        'name: "vae-generator"\nmax_batch_size: 8\ndynamic_batching {\n',
        'not a Triton ModelConfig in protobuf text format: 3:18 : Expected "}".',
    ),
    "unknown field": ("max_batch_size: 8\nmax_batch: 8\n", 'has no field named "max_batch"'),
}


@pytest.mark.parametrize("edit, expected", REFUSED.values(), ids=REFUSED.keys())
def test_what_zoo_serve_cannot_honour_is_refused_by_file_and_field(generator, edit, expected):
    rewrite(generator, edit)
    with pytest.raises(zoo.ZooError) as caught:
        repository.read_config(generator, session_of(generator))
    message = str(caught.value)
    assert message.startswith(f"{generator / 'config.pbtxt'}: ") and expected in message
    assert "\n" not in message


def test_a_hand_written_triton_config_is_read(generator):
    """Triton's list syntax and its optional fields: input and output left to auto-complete, the
    backend instead of the platform, CPU instance groups (one without a count: Triton's 2 for an
    onnxruntime model on the CPU)."""
    rewrite(
        generator,
        """
        backend: "onnxruntime"
        max_batch_size: 16
        version_policy: { latest: { num_versions: 1 } }
        dynamic_batching { max_queue_delay_microseconds: 500 }
        instance_group [ { count: 2, kind: KIND_CPU }, { kind: KIND_AUTO } ]
        parameters [ { key: "intra_op_thread_count", value: { string_value: "1" } },
                     { key: "inter_op_thread_count", value: { string_value: "0" } } ]
    """,
    )
    assert repository.read_config(generator, session_of(generator)) == repository.ServingConfig(
        max_batch=16, max_delay_ms=0.5, instances=4, intra_op_threads=1, inter_op_threads=0
    )


def test_tensors_may_be_given_in_any_order_or_left_out(generator):
    rewrite(generator, lambda c: c.ClearField("output"))
    assert repository.read_config(generator, session_of(generator)).max_batch == repository.MAX_BATCH_SIZE
    rewrite(
        generator,
        'platform: "onnxruntime_onnx"\nmax_batch_size: 4\n'
        'input [{ name: "eps", data_type: TYPE_FP32, dims: [ 20 ] }]\n',
    )
    assert repository.read_config(generator, session_of(generator)).max_batch == 4


def test_without_dynamic_batching_each_request_runs_alone(generator):
    rewrite(generator, lambda c: c.ClearField("dynamic_batching"))
    read = repository.read_config(generator, session_of(generator))
    assert read.max_delay_ms == 0 and not read.dynamic_batching
    # A file without its outputs is completed by Triton, which then adds the block itself.
    rewrite(generator, lambda c: (c.ClearField("dynamic_batching"), c.ClearField("output")))
    assert repository.read_config(generator, session_of(generator)).dynamic_batching


def test_an_unreadable_config_is_one_line(generator):
    (generator / "config.pbtxt").write_bytes(b'name: "\xff\xfe"\n')
    with pytest.raises(zoo.ZooError, match="config.pbtxt") as caught:
        repository.read_config(generator, session_of(generator))
    assert "\n" not in str(caught.value)
