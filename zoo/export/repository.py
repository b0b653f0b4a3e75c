"""The model repository: the folder layout that Triton, KServe and `zoo serve` all read.

    DIR/
      vae-generator/
        config.pbtxt        platform, max_batch_size, input and output names, types and dims, and how
                            to serve it: dynamic_batching, instance_group, onnxruntime's thread counts
        1/model.onnx        the file `zoo export` wrote, unchanged

``write_model`` adds one exported file to a repository (atomically: a reader sees the old model or
the new one), ``find_models`` lists what a repository holds and ``read_config`` reads one model's
config.pbtxt into the settings `zoo serve` runs it with. The repository is the configuration, so
config.pbtxt is written and read as Triton's own ``ModelConfig`` protobuf message, with protobuf's
text-format printer and parser: a file `zoo serve` accepts is one Triton accepts, and a field zoo
serve cannot honour is refused by name rather than silently ignored. The serving settings themselves
(their fields, defaults and what Triton does without them) are the table in serving_settings.py.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from zoo.core.atomic import atomic_write, atomic_write_text
from zoo.core.errors import ZooError
from zoo.export.serving_settings import BY_NAME, DEFAULTS, MAX_THREADS, SETTINGS

CONFIG = "config.pbtxt"
MODEL_FILE = "model.onnx"
VERSION = "1"  # `zoo export` writes one version; a repository may hold more, the highest is served
# Triton rejects a request with more rows than max_batch_size; the exported graphs take any batch,
# so this only bounds one request's size. It matches the runtime's chunk of rows per call.
MAX_BATCH_SIZE = BY_NAME["max_batch"].default
# The ranges `zoo export` writes and `zoo serve` reads, so every written file is one that is served.
MAX_BATCH_LIMIT = BY_NAME["max_batch"].high
MAX_DELAY_MS = BY_NAME["max_delay_ms"].high
MAX_INSTANCES = BY_NAME["instances"].high
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # safe as a folder name and in a URL path
# onnxruntime's type names -> the protocol's datatypes (what /v2 metadata says), and Triton's config
# enum for each (what config.pbtxt says).
ONNX_TO_V2 = {"tensor(float)": "FP32", "tensor(bool)": "BOOL"}  # BOOL: a scorer's anomalous flags
ONNX_TO_TRITON = {onnx_type: f"TYPE_{v2}" for onnx_type, v2 in ONNX_TO_V2.items()}
PLATFORM, BACKEND = "onnxruntime_onnx", "onnxruntime"
# The keys Triton's onnxruntime backend reads for the session's thread pools -> the settings' names.
THREAD_PARAMETERS = {s.field.removeprefix("parameters."): s.name for s in SETTINGS if s.field.startswith("parameters.")}
HONOURED = "name, platform, backend, input, output, version_policy, " + ", ".join(s.field for s in SETTINGS)


def _pb2():
    # Imported on use: the tritonclient.grpc package imports grpc (about 0.3 s), which `zoo --help`
    # and every command that never touches a repository would otherwise pay.
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def check_name(name: str, what: str = "model name") -> str:
    if not isinstance(name, str) or not NAME.match(name) or len(name) > 200:
        raise ZooError(
            f"{what} {name!r} must start with a letter or digit and hold only letters, digits, '.', '_' and '-'"
        )
    return name


def _dims(shape) -> list:
    # The batch dimension is left out (max_batch_size > 0 implies it); a named dimension is -1. A
    # tensor of the batch alone (a scorer's score) is [1] to clients: Triton refuses empty dims and
    # reshapes [batch, 1] to the model's [batch] (config.pbtxt's reshape { shape: [] }).
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape[1:]] or [1]


def _per_row(node) -> bool:
    """Whether a tensor is the batch alone ([batch]): config.pbtxt then reshapes dims [1] to it."""
    return len(node.shape) == 1


def _check_range(setting, value) -> None:
    if not setting.low <= value <= setting.high:
        raise ZooError(
            f"{setting.flag or setting.field} is {value:g}; it must be between {setting.low:g} and {setting.high:g}"
        )


def _add_tensors(declared, kind: str, nodes) -> None:
    pb2 = _pb2()
    for node in nodes:
        if node.type not in ONNX_TO_TRITON:
            raise ZooError(
                f"{kind} {node.name!r} has type {node.type}; the repository supports {', '.join(ONNX_TO_TRITON)}"
            )
        tensor = declared.add(
            name=node.name, data_type=pb2.DataType.Value(ONNX_TO_TRITON[node.type]), dims=_dims(node.shape)
        )
        if _per_row(node):
            tensor.reshape.SetInParent()  # reshape { } : the model's own shape is the batch alone


def model_config(name: str, session, **given) -> str:
    """config.pbtxt for one onnxruntime session's inputs and outputs, served with the settings
    ``given`` (serving_settings names) and the defaults for the rest. A setting is written when it
    was given or when its default is not what Triton does without it, so that Triton and `zoo serve`
    run the model the same way."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"model_config() got unknown serving settings {unknown}")
    values = {**DEFAULTS, **given}
    for setting in SETTINGS:
        _check_range(setting, values[setting.name])
    written = {s.name for s in SETTINGS if s.name in given or values[s.name] != s.triton_default}
    config = _pb2().ModelConfig(name=check_name(name), platform=PLATFORM, max_batch_size=values["max_batch"])
    _add_tensors(config.input, "input", session.get_inputs())
    _add_tensors(config.output, "output", session.get_outputs())
    config.dynamic_batching.SetInParent()  # present even when empty: it turns batching on in Triton
    config.dynamic_batching.max_queue_delay_microseconds = round(values["max_delay_ms"] * 1000)
    if "instances" in written:
        config.instance_group.add(count=values["instances"])  # no kind: Triton puts them on a GPU if it has one
    for key, setting_name in THREAD_PARAMETERS.items():
        if setting_name in written:
            config.parameters[key].string_value = str(values[setting_name])
    from google.protobuf import text_format

    text = text_format.MessageToString(config)
    # proto3 prints no field holding its zero value; a delay of 0 is written out all the same, so
    # that whoever reads the file sees it was chosen (Triton reads an empty block as 0 too).
    empty_batching = "dynamic_batching {\n}\n"
    if "max_delay_ms" in written and empty_batching in text:
        text = text.replace(empty_batching, "dynamic_batching {\n  max_queue_delay_microseconds: 0\n}\n")
    return text


def write_model(repository, name: str, onnx_path, **given) -> Path:
    """Add (or replace) ``repository/name`` with the exported file ``onnx_path``, served with the
    settings ``given`` (see ``model_config``); returns its folder."""
    from zoo.export import runtime

    artifact = runtime.load(onnx_path)  # a zoo artifact, or a ZooError before anything is written
    text = model_config(name, artifact.session, **given)
    folder = Path(repository) / check_name(name)
    try:
        atomic_write(folder / VERSION / MODEL_FILE, lambda tmp: shutil.copyfile(onnx_path, tmp))
        atomic_write_text(folder / CONFIG, text)
    except OSError as exc:
        raise ZooError(f"cannot write {folder} ({exc.strerror})") from None
    return folder


@dataclass(frozen=True)
class ServingConfig:
    """How Triton serves the model of one config.pbtxt (on a machine without a GPU), in the
    serving_settings names: a field the file leaves out has the value Triton gives it, and is named
    in ``left_out``."""

    max_batch: int  # rows per request at most
    max_delay_ms: float  # how long a request may wait for others to batch with
    instances: int  # model instances (sessions) running side by side
    intra_op_threads: int  # onnxruntime's threads within one operator; 0: its default
    inter_op_threads: int  # onnxruntime's threads across operators; 0: its default
    left_out: frozenset = frozenset()
    dynamic_batching: bool = True  # whether Triton merges queued requests into one call (_batches)


def _unsupported(where: str, field: str) -> ZooError:
    return ZooError(f"{where}: field {field} is not supported by zoo serve (it honours {HONOURED})")


def _only(where: str, message, allowed: set, prefix: str = "") -> None:
    """Refuse every set field of ``message`` outside ``allowed``: ignoring one would serve the model
    differently from Triton."""
    for field, _ in message.ListFields():
        if field.name not in allowed:
            raise _unsupported(where, prefix + field.name)


def _parse(path: Path):
    from google.protobuf import text_format

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return text_format.Parse(text, _pb2().ModelConfig())
    except (text_format.ParseError, ValueError) as exc:
        raise ZooError(
            f"{path}: not a Triton ModelConfig in protobuf text format: " + " ".join(str(exc).split())
        ) from None


def _check_model(where: str, config, folder_name: str) -> None:
    if config.name and config.name != folder_name:
        raise ZooError(f"{where}: name is {config.name!r}; it must be the folder's name, {folder_name!r}")
    if config.platform and config.platform != PLATFORM:
        raise ZooError(f"{where}: platform is {config.platform!r}; zoo serve runs {PLATFORM!r}")
    if config.backend and config.backend != BACKEND:
        raise ZooError(f"{where}: backend is {config.backend!r}; zoo serve runs {BACKEND!r}")
    if config.max_batch_size < 1:
        raise ZooError(
            f"{where}: max_batch_size is {config.max_batch_size}; zoo serve needs 1 or more "
            "(0 means the model has no batch dimension)"
        )
    if config.max_batch_size > MAX_BATCH_LIMIT:
        raise ZooError(f"{where}: max_batch_size is {config.max_batch_size}; zoo serve takes at most {MAX_BATCH_LIMIT}")
    if config.HasField("version_policy"):
        policy = config.version_policy
        if policy.WhichOneof("policy_choice") != "latest" or policy.latest.num_versions != 1:
            raise ZooError(
                f"{where}: version_policy must be latest {{ num_versions: 1 }} or absent; "
                "zoo serve serves the highest version only"
            )


def _check_tensors(where: str, kind: str, declared, nodes) -> None:
    """Triton fills in the input or output list from the model when it is left out (auto-complete); when
    given they must describe model.onnx exactly, or a client of Triton and of zoo serve would differ."""
    if not declared:
        return
    expected = {node.name: node for node in nodes}
    names = [tensor.name for tensor in declared]
    if sorted(names) != sorted(expected):
        raise ZooError(f"{where}: {kind} names {names}; model.onnx has {sorted(expected)}")
    for tensor in declared:
        node = expected[tensor.name]
        _only(where, tensor, {"name", "data_type", "dims"} | ({"reshape"} if _per_row(node) else set()), f"{kind}.")
        if _per_row(node) and (not tensor.HasField("reshape") or list(tensor.reshape.shape)):
            raise ZooError(
                f"{where}: {kind} {tensor.name} is [batch] in model.onnx; declare it as dims: [1] with "
                "reshape: { shape: [] }, as Triton needs"
            )
        model_type = ONNX_TO_TRITON.get(node.type, node.type)
        if _pb2().DataType.Name(tensor.data_type) != model_type:
            raise ZooError(
                f"{where}: {kind} {tensor.name} has data_type {_pb2().DataType.Name(tensor.data_type)}; "
                f"model.onnx has {model_type}"
            )
        if list(tensor.dims) != _dims(node.shape):
            raise ZooError(
                f"{where}: {kind} {tensor.name} has dims {list(tensor.dims)}; model.onnx has {_dims(node.shape)}"
            )


def _delay_ms(where: str, config) -> float | None:
    """The queue delay in ms; None where the file has no dynamic_batching (no delay; see _batches
    for whether requests are merged at all). proto3 cannot tell an explicit 0 from none in the
    block: both are 0."""
    if not config.HasField("dynamic_batching"):
        return None
    _only(where, config.dynamic_batching, {"max_queue_delay_microseconds"}, "dynamic_batching.")
    delay = config.dynamic_batching.max_queue_delay_microseconds / 1000
    if delay > MAX_DELAY_MS:
        raise ZooError(
            f"{where}: dynamic_batching.max_queue_delay_microseconds is "
            f"{config.dynamic_batching.max_queue_delay_microseconds}; zoo serve waits at most "
            f"{MAX_DELAY_MS * 1000:.0f}"
        )
    return delay


def _batches(config) -> bool:
    """Whether Triton merges queued requests into one call: where the file has dynamic_batching, and
    where Triton's onnxruntime backend adds the block itself. Its auto-complete (on by default) runs
    only for a file that leaves out its inputs or its outputs, and then turns dynamic batching on
    where max_batch_size is over 1 (onnxruntime_backend's AutoCompleteConfig). Any other file without
    the block has each request run alone."""
    if config.HasField("dynamic_batching"):
        return True
    return (not config.input or not config.output) and config.max_batch_size > 1


def _instances(where: str, config) -> int | None:
    """The instance count over all groups; None where the file has no instance_group."""
    if not config.instance_group:
        return None
    pb2 = _pb2()
    total = 0
    for group in config.instance_group:
        _only(where, group, {"count", "kind"}, "instance_group.")
        if group.kind not in (pb2.ModelInstanceGroup.KIND_AUTO, pb2.ModelInstanceGroup.KIND_CPU):
            raise ZooError(
                f"{where}: field instance_group.kind {pb2.ModelInstanceGroup.Kind.Name(group.kind)} is "
                "not supported by zoo serve (it runs on the CPU: KIND_CPU or KIND_AUTO)"
            )
        if group.count < 0:
            raise ZooError(f"{where}: instance_group.count is {group.count}; it must be 1 or more")
        # A group without a count gets Triton's default for an onnxruntime model on the CPU (2), the
        # same as a file without instance_group.
        total += group.count or BY_NAME["instances"].triton_default
    if total > MAX_INSTANCES:
        raise ZooError(f"{where}: instance_group counts add up to {total}; zoo serve runs at most {MAX_INSTANCES}")
    return total


def _threads(where: str, config) -> dict:
    threads = {}
    for key, value in config.parameters.items():
        if key not in THREAD_PARAMETERS:
            raise ZooError(
                f"{where}: field parameters key {key!r} is not supported by zoo serve (it honours {HONOURED})"
            )
        text = value.string_value
        # Triton's backend reads the value as a C int: digits only, no sign or spaces.
        if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_THREADS:
            raise ZooError(
                f"{where}: parameters {key} is {text!r}; it must be a whole number of threads "
                f"from 0 to {MAX_THREADS} (0: onnxruntime's default)"
            )
        threads[THREAD_PARAMETERS[key]] = int(text)
    return threads


def read_config(model_folder, session) -> ServingConfig:
    """Read and check ``model_folder/config.pbtxt`` against ``session``, the onnxruntime session of
    that folder's model.onnx; every problem is one ZooError line naming the file and the field."""
    path = Path(model_folder) / CONFIG
    where = str(path)
    config = _parse(path)
    supported = {
        "name",
        "platform",
        "backend",
        "max_batch_size",
        "input",
        "output",
        "version_policy",
        "dynamic_batching",
        "instance_group",
        "parameters",
    }
    _only(where, config, supported)
    _check_model(where, config, Path(model_folder).name)
    _check_tensors(where, "input", config.input, session.get_inputs())
    _check_tensors(where, "output", config.output, session.get_outputs())
    stated = {
        "max_batch": config.max_batch_size,
        "max_delay_ms": _delay_ms(where, config),
        "instances": _instances(where, config),
        **_threads(where, config),
    }
    values = {s.name: s.triton_default if stated.get(s.name) is None else stated[s.name] for s in SETTINGS}
    left_out = frozenset(s.name for s in SETTINGS if stated.get(s.name) is None)
    return ServingConfig(**values, left_out=left_out, dynamic_batching=_batches(config))


def is_repository(folder) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((sub / CONFIG).is_file() for sub in folder.iterdir() if sub.is_dir())


def model_file(model_folder) -> Path | None:
    """The model.onnx of the highest numbered version folder, as Triton's default policy serves."""
    versions = [
        v for v in Path(model_folder).iterdir() if v.is_dir() and v.name.isdigit() and (v / MODEL_FILE).is_file()
    ]
    return max(versions, key=lambda v: int(v.name)) / MODEL_FILE if versions else None


def find_models(repository) -> dict:
    """``{model name: path of its model.onnx}`` for every model folder of ``repository``; the model's
    folder, which ``read_config`` reads, is ``path.parent.parent``."""
    repository = Path(repository)
    models = {}
    for sub in sorted(p for p in repository.iterdir() if p.is_dir() and (p / CONFIG).is_file()):
        path = model_file(sub)
        if path is None:
            raise ZooError(f"{sub}: no version folder with a {MODEL_FILE} (expected {sub}/{VERSION}/{MODEL_FILE})")
        models[check_name(sub.name, f"{sub}: folder name")] = path
    if not models:
        raise ZooError(f"{repository}: no model folders with a {CONFIG}")
    return models
