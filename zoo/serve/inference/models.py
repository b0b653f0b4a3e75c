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

Each model's serving settings (``Serving``) come, field by field, from the command line when a flag
was given, else from the model's ``config.pbtxt`` in a repository (a field it leaves out meaning what
Triton does without it), else from the defaults of ``zoo.export.serving_settings``; each remembers
where it came from, for the banner.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.export import metadata, repository, runtime
from zoo.export.serving_settings import DEFAULTS, SETTINGS


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


@dataclass(frozen=True)
class Serving:
    """How one model is served: one field per setting of ``serving_settings.SETTINGS`` (whose
    defaults these are), and whether queued requests share a call, as ``repository.ServingConfig``
    has. No flag sets the latter: it follows config.pbtxt, as Triton's batching does."""

    max_batch: int = DEFAULTS["max_batch"]  # rows per request at most, and per onnxruntime call
    max_delay_ms: float = DEFAULTS["max_delay_ms"]  # the longest a queued request waits for company
    instances: int = DEFAULTS["instances"]  # onnxruntime sessions running calls in parallel
    intra_op_threads: int = DEFAULTS["intra_op_threads"]  # onnxruntime's threads within one call (0: its default)
    inter_op_threads: int = DEFAULTS["inter_op_threads"]
    # False where config.pbtxt leaves dynamic_batching out (and Triton does not add it): each
    # request then runs in a call of its own, as in Triton.
    dynamic_batching: bool = True


TRITON_DEFAULT = "Triton's default"  # the source of a setting a config.pbtxt leaves out


def resolve(flags: dict, config=None) -> tuple:
    """(Serving, {setting: where its value came from}): a flag given on the command line wins, then
    what ``config`` (a repository.ServingConfig, or None) says, Triton's default for a field it
    leaves out included, then the default."""
    values, sources = {}, {}
    # A delay given on the command line asks for batching, whatever the file says.
    batching = config is None or config.dynamic_batching or flags.get("max_delay_ms") is not None
    if not batching:
        values["dynamic_batching"] = False
    for setting in SETTINGS:
        name = setting.name
        if flags.get(name) is not None:
            values[name], sources[name] = flags[name], setting.flag
        elif config is not None:
            values[name] = getattr(config, name)
            sources[name] = TRITON_DEFAULT if name in config.left_out else "config.pbtxt"
        else:
            sources[name] = "default"
    return Serving(**values), sources


def describe_serving(serving: Serving, sources: dict) -> str:
    """One line for the banner: each setting, marked with where it came from unless a default."""
    marked = [
        setting.describe(getattr(serving, setting.name))
        + (f" [{sources[setting.name]}]" if sources[setting.name] != "default" else "")
        for setting in SETTINGS
    ]
    if not serving.dynamic_batching:
        marked.append("each request alone [config.pbtxt has no dynamic_batching]")
    defaults = any(sources[setting.name] == "default" for setting in SETTINGS)
    return ", ".join(marked) + ("; unmarked: defaults" if defaults else "")


@dataclass
class Model:
    name: str
    artifact: runtime.Artifact
    input: Tensor
    outputs: list = field(default_factory=list)
    serving: Serving = field(default_factory=Serving)
    sources: dict = field(default_factory=dict)  # where each serving setting came from
    sessions: list = field(default_factory=list)  # one onnxruntime session per instance
    # The version the protocol's URLs and answers name: a repository's version folder (the highest,
    # the one served), else the one `zoo export --repository` writes.
    version: str = repository.VERSION

    @property
    def output_names(self) -> list:
        return [o.name for o in self.outputs]

    def output(self, name: str) -> Tensor | None:
        return next((o for o in self.outputs if o.name == name), None)

    def parameters(self) -> dict:
        """The zoo.* description as v2 parameters (whose values must be strings, numbers or bools:
        the JSON-valued entries stay the JSON text they are in the file)."""
        return metadata.zoo_entries(self.artifact.session.get_modelmeta().custom_metadata_map)

    @property
    def max_batch(self) -> int:
        return self.serving.max_batch

    def runner(self, instance: int):
        """``run(batch) -> outputs`` on one instance's session; called off the event loop (onnxruntime
        frees the GIL)."""
        session, names, input_name = self.sessions[instance], self.output_names, self.input.name
        return lambda batch: session.run(names, {input_name: batch})


def _tensor(node, where: Path) -> Tensor:
    if node.type not in repository.ONNX_TO_V2:
        raise ZooError(
            f"{where}: {node.name!r} has type {node.type}; zoo serve handles {', '.join(repository.ONNX_TO_V2)}"
        )
    dims = node.shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise ZooError(f"{where}: {node.name!r} has shape {node.shape}; only the batch may vary")
    # A tensor of the batch alone (a scorer's score) is served as [batch, 1], as Triton serves it
    # from the repository zoo export writes (Triton refuses a config.pbtxt with empty dims).
    return Tensor(node.name, repository.ONNX_TO_V2[node.type], tuple(dims) or (1,))


def open_model(name: str, path: Path, flags: dict, folder: Path | None = None) -> Model:
    """One model; ``folder``: its model folder when it comes from a repository (whose config.pbtxt
    then has its say)."""
    config = None
    if folder is not None:  # the file is checked first, then its config against it
        config = repository.read_config(folder, runtime.load(path).session)
    serving, sources = resolve(flags, config)
    # No memory arena: onnxruntime's would keep the largest batch's memory for good (measured: the
    # same speed for these models, and the memory back after a burst of large requests).
    options = {
        "intra_op_num_threads": serving.intra_op_threads,
        "inter_op_num_threads": serving.inter_op_threads,
        "memory_arena": False,
    }
    # One session per instance, as Triton gives each instance its own: parallel calls into one
    # session would share (and contend for) its thread pool.
    artifacts = [runtime.load(path, **options) for _ in range(serving.instances)]
    session = artifacts[0].session
    (input_node,) = session.get_inputs()  # runtime.load has checked it is a zoo artifact: one input
    if repository.ONNX_TO_V2.get(input_node.type) != "FP32":  # BOOL is an output type only (a scorer's flags)
        raise ZooError(f"{path}: input {input_node.name!r} has type {input_node.type}; zoo serve takes FP32 inputs")
    return Model(
        name,
        artifacts[0],
        _tensor(input_node, path),
        [_tensor(o, path) for o in session.get_outputs()],
        serving,
        sources,
        [a.session for a in artifacts],
        version=path.parent.name if folder is not None else repository.VERSION,
    )


def _named_files(path: Path, prefix: str | None) -> list:
    """[(name, file, model folder or None)] for one PATH argument."""
    if path.is_file():
        meta = runtime.read_metadata(path)
        return [(f"{prefix or meta['zoo.model']}-{meta['zoo.part']}", path, None)]
    if not path.is_dir():
        raise ZooError(f"{path}: no such file or folder")
    if repository.is_repository(path):
        if prefix:
            raise ZooError(
                f"--name does not apply to the model repository {path}: its folder names are the model names"
            )
        return [(name, file, file.parent.parent) for name, file in repository.find_models(path).items()]
    files = sorted(path.glob("*.onnx"))
    if not files:
        raise ZooError(f"{path}: no .onnx files and no model repository; write them with `zoo export {path}`")
    prefix = prefix or path.resolve().name
    return [(f"{prefix}-{runtime.read_metadata(f)['zoo.part']}", f, None) for f in files]


def load_models(paths, name: str | None = None, flags: dict | None = None) -> dict:
    """``{model name: Model}`` for the PATH arguments, in the order given. ``flags``: the serving
    settings given on the command line (``Serving``'s field names; None or absent: not given)."""
    if not paths:
        raise ZooError("give at least one PATH: a run folder, an exported .onnx file or a model repository")
    if name is not None and len(paths) > 1:
        raise ZooError("--name names the models of one PATH; give one PATH with it")
    found = {}
    for path in map(Path, paths):
        for model_name, file, folder in _named_files(path, name):
            repository.check_name(model_name)
            if model_name in found:
                raise ZooError(
                    f"two models are named {model_name}: {found[model_name][0]} and {file}; "
                    "serve one of them with --name"
                )
            found[model_name] = (file, folder)
    return {
        model_name: open_model(model_name, file, flags or {}, folder) for model_name, (file, folder) in found.items()
    }
