"""The model repository: the folder layout that Triton, KServe and `zoo serve` all read.

    DIR/
      vae-generator/
        config.pbtxt        platform, max_batch_size, input and output names, types and dims
        1/model.onnx        the file `zoo export` wrote, unchanged

``write_model`` adds one exported file to a repository (atomically: a reader sees the old model or
the new one) and ``find_models`` lists what a repository holds. The config is written as text, in
the protobuf text format of Triton's ``ModelConfig``; only ``onnxruntime`` and numpy are needed
here, so serving a repository stays torch-free.
"""

import re
import shutil
from pathlib import Path

from zoo.atomic import atomic_write, atomic_write_text
from zoo.errors import ZooError

CONFIG = "config.pbtxt"
MODEL_FILE = "model.onnx"
VERSION = "1"  # `zoo export` writes one version; a repository may hold more, the highest is served
# Triton rejects a request with more rows than max_batch_size; the exported graphs take any batch,
# so this only bounds one request's size. It matches the runtime's chunk of rows per call.
MAX_BATCH_SIZE = 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # safe as a folder name and in a URL path
ONNX_TO_TRITON = {"tensor(float)": "TYPE_FP32"}


def check_name(name: str, what: str = "model name") -> str:
    if not isinstance(name, str) or not NAME.match(name) or len(name) > 200:
        raise ZooError(f"{what} {name!r} must start with a letter or digit and hold only letters, digits, "
                       "'.', '_' and '-'")
    return name


def _dims(shape) -> str:
    # The batch dimension is left out (max_batch_size > 0 implies it); a named dimension is -1.
    return ", ".join(str(d) if isinstance(d, int) and d >= 0 else "-1" for d in shape[1:])


def _tensors(kind: str, nodes) -> str:
    blocks = []
    for node in nodes:
        if node.type not in ONNX_TO_TRITON:
            raise ZooError(f"{kind} {node.name!r} has type {node.type}; the repository supports "
                           f"{', '.join(ONNX_TO_TRITON)}")
        blocks.append(f'  {{\n    name: "{node.name}"\n    data_type: {ONNX_TO_TRITON[node.type]}\n'
                      f"    dims: [ {_dims(node.shape)} ]\n  }}")
    return f"{kind} [\n" + ",\n".join(blocks) + "\n]\n"


def model_config(name: str, session) -> str:
    """config.pbtxt for one onnxruntime session's inputs and outputs."""
    return (f'name: "{check_name(name)}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {MAX_BATCH_SIZE}\n'
            + _tensors("input", session.get_inputs()) + _tensors("output", session.get_outputs())
            + "dynamic_batching { }\n")


def write_model(repository, name: str, onnx_path) -> Path:
    """Add (or replace) ``repository/name`` with the exported file ``onnx_path``; returns its folder."""
    from zoo.export import runtime

    artifact = runtime.load(onnx_path)  # a zoo artifact, or a ZooError before anything is written
    folder = Path(repository) / check_name(name)
    try:
        atomic_write(folder / VERSION / MODEL_FILE, lambda tmp: shutil.copyfile(onnx_path, tmp))
        atomic_write_text(folder / CONFIG, model_config(name, artifact.session))
    except OSError as exc:
        raise ZooError(f"cannot write {folder} ({exc.strerror})") from None
    return folder


def is_repository(folder) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((sub / CONFIG).is_file() for sub in folder.iterdir() if sub.is_dir())


def model_file(model_folder) -> Path | None:
    """The model.onnx of the highest numbered version folder, as Triton's default policy serves."""
    versions = [v for v in Path(model_folder).iterdir() if v.is_dir() and v.name.isdigit()
                and (v / MODEL_FILE).is_file()]
    return max(versions, key=lambda v: int(v.name)) / MODEL_FILE if versions else None


def find_models(repository) -> dict:
    """``{model name: path of its model.onnx}`` for every model folder of ``repository``."""
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
