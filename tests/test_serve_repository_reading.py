"""A config.pbtxt zoo export did not write (a hand-written one, Triton's own syntax) is read as
Triton reads it: a delay or instance group left out means what it means to Triton, lists and
optional fields parse, tensors may be left out; what zoo serve cannot honour is refused in one line
naming the file and the field. (tests/test_serve_repository.py covers what zoo export writes.)"""

import onnxruntime
import pytest
from google.protobuf import text_format
from test_serve_helpers import vae_run
from tritonclient.grpc import model_config_pb2

import zoo
from zoo.export import repository


def session_of(model_folder):
    return onnxruntime.InferenceSession(str(model_folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def parse(model_folder):
    return text_format.Parse((model_folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


@pytest.fixture
def generator(tmp_path_factory, tmp_path):
    """vae-generator (eps [20] -> x_hat [1, 28, 28]) as zoo export writes it, in a folder of its own
    whose config a test may rewrite."""
    run = vae_run(tmp_path_factory)
    return repository.write_model(tmp_path / "models", "vae-generator", run / "generator.onnx")


def rewrite(model_folder, edit) -> None:
    """Apply ``edit`` to the parsed config (or, given a string, replace the file's text with it)."""
    if isinstance(edit, str):
        (model_folder / "config.pbtxt").write_text(edit)
        return
    config = parse(model_folder)
    edit(config)
    (model_folder / "config.pbtxt").write_text(text_format.MessageToString(config))


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
