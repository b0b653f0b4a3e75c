"""``zoo export``: a run folder -> encoder.onnx, decoder.onnx and generator.onnx, validated, and
scorer.onnx when the run has an anomaly threshold (threshold.json).

Each part is a small ``nn.Module`` around the model that talks only to the ``AutoEncoder``
interface (``encoder_outputs``, ``decode``, ``latent_shape``, ``data_shape``) and the run's prior,
exported with torch's dynamo-based exporter with a dynamic batch dimension. Before any file lands
in the output folder all of them are checked: ``onnx.checker`` (full check), no random nodes, no
external data, and onnxruntime against PyTorch at several batch sizes. The files are written under
temporary names and renamed into place only when all of them pass, so a failed export leaves the
folder as it was.
"""

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

import zoo
from zoo.core.atomic import temp_beside
from zoo.core.errors import ZooError, first_line
from zoo.export import metadata
from zoo.export.parts import Part, make_parts, make_scorer_part
from zoo.train.run_folder import load_run, read_threshold

MIN_OPSET = 18  # the opset torch's exporter implements natively; older ones need lossy conversion
CHECK_BATCHES = (1, 2, 37)
TOLERANCE = 1e-4  # max abs error between onnxruntime and PyTorch, fp32
MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit: anything larger would need external data
# Ops that would make a graph non-deterministic; the generator takes its noise as an input instead.
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass
class ExportedFile:
    part: str
    path: Path
    bytes: int
    max_abs_error: float  # onnxruntime vs PyTorch, worst over CHECK_BATCHES and outputs


def _parts(run, threshold: dict | None) -> list:
    try:
        parts = make_parts(run.model, run.prior)
    except ValueError as exc:  # the runtime's Encoder.encode returns the first output as "the code"
        raise ZooError(f"{run.config.model}: {exc}") from None
    if threshold is not None:
        if threshold.get("definition", run.model.score_definition) != run.model.score_definition:
            raise ZooError(
                f"{run.path}: its threshold was set on another score ({threshold['definition']!r}) than the "
                f"model's ({run.model.score_definition!r}; the default changed since); a scorer would flag by the "
                "wrong number: retrain the run, or export without a scorer by moving threshold.json away"
            )
        parts.append(make_scorer_part(run.model, run.prior, threshold["threshold"]))
    return parts


def _metadata(run, part: Part, threshold: dict | None) -> dict:
    """The zoo.* metadata_props of one part's file (the format is zoo.export.metadata's)."""
    score = metadata.score_for(threshold) if part.name == "scorer" else None
    return metadata.build(
        score=score,
        model=run.config.model,
        part=part.name,
        data_shape=run.model.data_shape,
        latent_shape=run.model.latent_shape,
        prior=part.prior,
        config=run.config.model_config,
        dataset=run.config.dataset,
        version=zoo.__version__,
        preprocess=metadata.preprocess_for(run.model.data_shape, run.config.data.get("preprocess")),
        data_defaults=run.config.data_defaults or None,
    )


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
        raise ZooError(
            f"torch.onnx could not export the {part.name} ({type(exc).__name__}: {first_line(exc)})"
        ) from exc
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
        raise ZooError(
            f"{name}: the graph has random nodes ({', '.join(random)}); exported graphs must be deterministic"
        )
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
        raise ZooError(f"{part.name}.onnx: onnxruntime cannot load it ({first_line(exc)})") from None
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
            raise ZooError(f"{part.name}.onnx: onnxruntime fails at batch {batch} ({first_line(exc)})") from None
        for name, want, have in zip(part.output_names, expected, got):
            if have.shape != tuple(want.shape):
                raise ZooError(
                    f"{path.name}: output {name} has shape {have.shape} at batch {batch}, "
                    f"PyTorch gives {tuple(want.shape)}"
                )
            error = float(np.max(np.abs(have.astype(np.float64) - want.double().numpy())))
            if not error <= TOLERANCE:  # also catches NaN
                raise ZooError(
                    f"{part.name}.onnx: onnxruntime differs from PyTorch by max abs error {error:.3g} "
                    f"(tolerance {TOLERANCE:g}) on output {name} at batch {batch}; no file written"
                )
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
            raise ZooError(f"{part.name}.onnx fails onnx.checker: {first_line(exc)}") from None
        return tmp, _max_abs_error(tmp, part)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_artifacts(run_dir, out_dir=None, opset: int = MIN_OPSET) -> list:
    """Export and validate all the parts (the scorer too when the run has a threshold); returns one
    ``ExportedFile`` per file written."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ZooError(
            f"opset must be between {MIN_OPSET} and {onnx.defs.onnx_opset_version()} "
            f"(the newest this onnx knows), got {opset}"
        )
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
        threshold = read_threshold(run_dir)
        for part in _parts(run, threshold):
            proto = _to_onnx(part, opset)
            onnx.helper.set_model_props(proto, _metadata(run, part, threshold))
            proto.doc_string = f"autoencoder-zoo {run.config.model} {part.name}"
            _check_structure(proto, f"{part.name}.onnx")
            staged.append((part.name, *_stage(proto, out_dir, part)))
        artifacts = []
        for name, tmp, error in staged:
            final = out_dir / f"{name}.onnx"
            os.replace(tmp, final)
            artifacts.append(ExportedFile(name, final, final.stat().st_size, error))
            renamed = True
        return artifacts
    finally:
        for _, tmp, _ in staged:
            tmp.unlink(missing_ok=True)  # no-op for the files already renamed
        if created and not renamed:
            with contextlib.suppress(OSError):  # a failed export leaves no empty --out folder either
                out_dir.rmdir()


def export_run(run_dir, out_dir=None, opset: int = MIN_OPSET) -> dict:
    """Export a run folder to ONNX; returns ``{"encoder": path, "decoder": path, "generator": path}``
    (and ``"scorer"`` for a run with an anomaly threshold).

    ``out_dir`` defaults to the run folder. Raises ``zoo.ZooError`` (and writes nothing) when the
    run cannot be loaded or any file fails validation.
    """
    return {a.part: a.path for a in export_artifacts(run_dir, out_dir, opset)}
