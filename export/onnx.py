"""``zoo export``: a run folder -> encoder.onnx, decoder.onnx and generator.onnx, validated.

Each part is a small ``nn.Module`` around the model that talks only to the ``AutoEncoder``
interface (``encoder_outputs``, ``decode``, ``latent_shape``, ``data_shape``) and the run's prior,
exported with torch's dynamo-based exporter with a dynamic batch dimension. Before any file lands
in the output folder all three are checked: ``onnx.checker`` (full check), no random nodes, no
external data, and onnxruntime against PyTorch at several batch sizes. The files are written under
temporary names and renamed into place only when all three pass, so a failed export leaves the
folder as it was.
"""

import contextlib
import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import zoo
from zoo.atomic import temp_beside
from zoo.checkpoint import load_run
from zoo.errors import ZooError

PARTS = ("encoder", "decoder", "generator")
MIN_OPSET = 18  # the opset torch's exporter implements natively; older ones need lossy conversion
EXAMPLE_BATCH = 2  # torch.export specialises a batch of 1 to a constant; 2 keeps it symbolic
CHECK_BATCHES = (1, 2, 37)
TOLERANCE = 1e-4  # max abs error between onnxruntime and PyTorch, fp32
MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit: anything larger would need external data
# Ops that would make a graph non-deterministic; the generator takes its noise as an input instead.
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


class EncoderGraph(nn.Module):
    """x -> the model's named encoder outputs, in order (z, or mu and logvar)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(self.model.encoder_outputs(x).values())


class DecoderGraph(nn.Module):
    """z [batch, *latent_shape] -> x_hat [batch, *data_shape]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decode(z)


class GeneratorGraph(nn.Module):
    """eps ~ N(0, I) [batch, latent_dim] -> x_hat: the prior's mean and Cholesky factor become
    weights of the graph, so a caller only needs a standard-normal random number generator."""

    def __init__(self, model, prior):
        super().__init__()
        self.model = model
        self.prior = prior

    def forward(self, eps):
        return self.model.decode(self.prior(eps).view(-1, *self.model.latent_shape))


@dataclass
class Part:
    name: str  # "encoder", "decoder" or "generator"
    module: nn.Module
    input_name: str
    output_names: list
    example: torch.Tensor  # the batch the exporter traces with
    make_input: object  # make_input(batch, generator) -> a valid input batch for validation
    prior: dict  # what zoo.prior holds in this file


@dataclass
class Artifact:
    part: str
    path: Path
    bytes: int
    max_abs_error: float  # onnxruntime vs PyTorch, worst over CHECK_BATCHES and outputs


def _parts(run) -> list:
    model, prior = run.model, run.prior
    latent_dim = math.prod(model.latent_shape)

    def data(batch, gen):
        return torch.rand(batch, *model.data_shape, generator=gen)

    def eps(batch, gen):
        return torch.randn(batch, latent_dim, generator=gen)

    def code(batch, gen):
        # Latents as the prior spreads them, so the decoder is checked where it is used.
        with torch.no_grad():
            return prior(eps(batch, gen)).view(batch, *model.latent_shape)

    gen = torch.Generator().manual_seed(0)
    x = data(EXAMPLE_BATCH, gen)
    with torch.no_grad():
        outputs = model.encoder_outputs(x)
        code_ok = torch.allclose(next(iter(outputs.values())), model.encode(x), rtol=1e-5, atol=1e-6)
    if not code_ok:
        # The runtime's Encoder.encode returns the first output as "the code"; keep that honest.
        raise ZooError(f"{run.config['model']}: the first of encoder_outputs() must be encode(x), the code")

    described = prior.describe()
    # The generator folds scale_tril into its graph and an encoder does not sample, so only the
    # decoder (sampled from its metadata) carries the full covariance factor.
    summary = {k: v for k, v in described.items() if k != "scale_tril"}
    return [
        Part("encoder", EncoderGraph(model), "x", list(outputs), x, data, summary),
        Part("decoder", DecoderGraph(model), "z", ["x_hat"], code(EXAMPLE_BATCH, gen), code, described),
        Part("generator", GeneratorGraph(model, prior), "eps", ["x_hat"], eps(EXAMPLE_BATCH, gen), eps,
             {**summary, "folded_into_graph": True}),
    ]


def _metadata(run, part: Part) -> dict:
    model, config = run.model, run.config
    return {
        "zoo.model": config["model"],
        "zoo.part": part.name,
        "zoo.data_shape": json.dumps(list(model.data_shape)),
        "zoo.latent_shape": json.dumps(list(model.latent_shape)),
        "zoo.prior": json.dumps(part.prior),
        "zoo.config": json.dumps(config["model_config"]),
        "zoo.dataset": str(config.get("dataset") or ""),
        "zoo.version": zoo.__version__,
    }


def _first_line(exc: BaseException) -> str:
    """Errors from torch, onnx and onnxruntime run to pages; the CLI shows one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _to_onnx(part: Part, opset: int) -> onnx.ModelProto:
    """Run torch's exporter quietly: it prints progress lines and warnings meant for developers."""
    batch = torch.export.Dim("batch", min=1)
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                part.module.eval(),
                (part.example,),
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=[part.input_name],
                output_names=part.output_names,
                opset_version=opset,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:
        raise ZooError(f"torch.onnx could not export the {part.name} ({type(exc).__name__}: {_first_line(exc)})") from exc
    return program.model_proto


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _all_nodes(sub)


def _check_structure(proto: onnx.ModelProto, name: str) -> None:
    nodes = list(_all_nodes(proto.graph)) + [n for f in proto.functions for n in f.node]
    random = sorted({n.op_type for n in nodes if n.op_type in RANDOM_OPS})
    if random:
        raise ZooError(f"{name}: the graph has random nodes ({', '.join(random)}); exported graphs must be deterministic")
    external = [t.name for t in proto.graph.initializer if onnx.external_data_helper.uses_external_data(t)]
    if external:
        raise ZooError(f"{name}: weights {external[:3]} live in external data files; the file must be self-contained")
    if proto.ByteSize() > MAX_PROTO_BYTES:
        raise ZooError(f"{name}: {proto.ByteSize():,} bytes is over protobuf's 2 GB limit for one file")


def _max_abs_error(path, part: Part) -> float:
    """onnxruntime on the written file against the PyTorch module, worst case over the batches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings on the user's terminal
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # e.g. an opset newer than this onnxruntime implements
        raise ZooError(f"{part.name}.onnx: onnxruntime cannot load it ({_first_line(exc)})") from None
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for batch in CHECK_BATCHES:
        inputs = part.make_input(batch, gen)
        with torch.no_grad():
            expected = part.module(inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        try:
            got = session.run(part.output_names, {part.input_name: inputs.numpy()})
        except Exception as exc:
            raise ZooError(f"{part.name}.onnx: onnxruntime fails at batch {batch} ({_first_line(exc)})") from None
        for name, want, have in zip(part.output_names, expected, got):
            if have.shape != tuple(want.shape):
                raise ZooError(f"{path.name}: output {name} has shape {have.shape} at batch {batch}, "
                               f"PyTorch gives {tuple(want.shape)}")
            error = float(np.max(np.abs(have.astype(np.float64) - want.double().numpy())))
            if not error <= TOLERANCE:  # also catches NaN
                raise ZooError(f"{part.name}.onnx: onnxruntime differs from PyTorch by max abs error {error:.3g} "
                               f"(tolerance {TOLERANCE:g}) on output {name} at batch {batch}; no file written")
            worst = max(worst, error)
    return worst


def _stage(proto: onnx.ModelProto, out_dir: Path, part: Part) -> tuple[Path, float]:
    """Write one part to a temporary file in out_dir and validate it there; returns (tmp, error)."""
    tmp = temp_beside(out_dir / f"{part.name}.onnx")
    try:
        # save_as_external_data=False keeps every weight inside the one file.
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise ZooError(f"{part.name}.onnx fails onnx.checker: {_first_line(exc)}") from None
        return tmp, _max_abs_error(tmp, part)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_artifacts(run_dir, out_dir=None, opset: int = MIN_OPSET) -> list:
    """Export and validate all three parts; returns one ``Artifact`` per file written."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ZooError(f"opset must be between {MIN_OPSET} and {onnx.defs.onnx_opset_version()} "
                       f"(the newest this onnx knows), got {opset}")
    run = load_run(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create output folder {out_dir} ({exc.strerror})") from None

    staged = []  # (part, tmp path, error): nothing is renamed until every part has passed
    renamed = False
    try:
        for part in _parts(run):
            proto = _to_onnx(part, opset)
            onnx.helper.set_model_props(proto, _metadata(run, part))
            proto.doc_string = f"autoencoder-zoo {run.config['model']} {part.name}"
            _check_structure(proto, f"{part.name}.onnx")
            staged.append((part.name, *_stage(proto, out_dir, part)))
        artifacts = []
        for name, tmp, error in staged:
            final = out_dir / f"{name}.onnx"
            os.replace(tmp, final)
            artifacts.append(Artifact(name, final, final.stat().st_size, error))
            renamed = True
        return artifacts
    finally:
        for _, tmp, _ in staged:
            tmp.unlink(missing_ok=True)  # no-op for the files already renamed
        if created and not renamed:
            with contextlib.suppress(OSError):  # a failed export leaves no empty --out folder either
                out_dir.rmdir()


def export_run(run_dir, out_dir=None, opset: int = MIN_OPSET) -> dict:
    """Export a run folder to ONNX; returns ``{"encoder": path, "decoder": path, "generator": path}``.

    ``out_dir`` defaults to the run folder. Raises ``zoo.ZooError`` (and writes nothing) when the
    run cannot be loaded or any file fails validation.
    """
    return {a.part: a.path for a in export_artifacts(run_dir, out_dir, opset)}
