"""Turn the PATH arguments of `zoo serve` into named models, each one onnxruntime session.

Naming, so that the same files get the same names however they are given:

- a run folder (``runs/vae``): every ``*.onnx`` in it, as ``<folder name>-<part>``
  (``vae-encoder``, ``vae-decoder``, ``vae-generator``); ``--name`` replaces the folder name;
- a single ``.onnx`` file: ``<zoo.model>-<zoo.part>`` from its metadata (``vae-generator``);
  ``--name`` replaces the ``zoo.model`` part;
- a model repository (``zoo export RUN --repository DIR``): its model folders' names, as Triton
  names them.

The part always comes from the file's ``zoo.part`` metadata, never from its file name. Two models
with one name are an error that names both files.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import ZooError
from zoo.export import repository, runtime

DATATYPES = {"tensor(float)": "FP32"}  # onnxruntime's type names -> the v2 protocol's


@dataclass
class Tensor:
    """One input or output as the v2 protocol describes it; ``shape`` excludes the batch."""

    name: str
    datatype: str
    shape: tuple

    @property
    def size(self) -> int:
        """Elements per row (per batch item)."""
        return math.prod(self.shape)

    def describe(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": [-1, *self.shape]}


@dataclass
class Model:
    name: str
    artifact: runtime.Artifact
    input: Tensor
    outputs: list = field(default_factory=list)

    @property
    def output_names(self) -> list:
        return [o.name for o in self.outputs]

    def output(self, name: str) -> Tensor | None:
        return next((o for o in self.outputs if o.name == name), None)

    def parameters(self) -> dict:
        """The zoo.* description as v2 parameters (whose values must be strings, numbers or bools:
        the JSON-valued entries stay the JSON text they are in the file)."""
        meta = self.artifact.session.get_modelmeta().custom_metadata_map
        return {key: meta[key] for key in runtime.METADATA_KEYS if key in meta}

    def run(self, batch):
        """Every output for one input batch; called off the event loop (onnxruntime frees the GIL)."""
        return self.artifact.session.run(self.output_names, {self.input.name: batch})


def _tensor(node, where: Path) -> Tensor:
    if node.type not in DATATYPES:
        raise ZooError(f"{where}: {node.name!r} has type {node.type}; zoo serve handles {', '.join(DATATYPES)}")
    dims = node.shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise ZooError(f"{where}: {node.name!r} has shape {node.shape}; only the batch may vary")
    return Tensor(node.name, DATATYPES[node.type], tuple(dims))


def open_model(name: str, path: Path, threads: int) -> Model:
    artifact = runtime.load(path, intra_op_num_threads=threads)
    session = artifact.session
    (input_node,) = session.get_inputs()  # runtime.load has checked it is a zoo artifact: one input
    return Model(name, artifact, _tensor(input_node, path), [_tensor(o, path) for o in session.get_outputs()])


def _named_files(path: Path, prefix: str | None) -> list:
    """[(name, file)] for one PATH argument."""
    if path.is_file():
        meta = runtime.read_metadata(path)
        return [(f"{prefix or meta['zoo.model']}-{meta['zoo.part']}", path)]
    if not path.is_dir():
        raise ZooError(f"{path}: no such file or folder")
    if repository.is_repository(path):
        if prefix:
            raise ZooError(f"--name does not apply to the model repository {path}: its folder names are the "
                           "model names")
        return list(repository.find_models(path).items())
    files = sorted(path.glob("*.onnx"))
    if not files:
        raise ZooError(f"{path}: no .onnx files and no model repository; write them with `zoo export {path}`")
    prefix = prefix or path.resolve().name
    return [(f"{prefix}-{runtime.read_metadata(f)['zoo.part']}", f) for f in files]


def load_models(paths, name: str | None = None, threads: int = 0) -> dict:
    """``{model name: Model}`` for the PATH arguments, in the order given."""
    if not paths:
        raise ZooError("give at least one PATH: a run folder, an exported .onnx file or a model repository")
    if name is not None and len(paths) > 1:
        raise ZooError("--name names the models of one PATH; give one PATH with it")
    sources = {}
    for path in map(Path, paths):
        for model_name, file in _named_files(path, name):
            repository.check_name(model_name)
            if model_name in sources:
                raise ZooError(f"two models are named {model_name}: {sources[model_name]} and {file}; "
                               "serve one of them with --name")
            sources[model_name] = file
    return {model_name: open_model(model_name, file, threads) for model_name, file in sources.items()}
