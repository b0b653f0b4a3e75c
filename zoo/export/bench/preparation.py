"""Step 1 of a run: every model becomes a run folder with seeded weights, exported with the
exporter users get, with its FLOPs counted and its inputs drawn once, so both runtimes see the very
same arrays."""

import contextlib
import dataclasses
import io
import time
from pathlib import Path

import numpy as np

from zoo.export.bench.settings import SEED


@dataclasses.dataclass
class PreparedPart:
    """One exported part of one model, as the benchmark measures it."""

    model: str
    part: str  # one of zoo.export.parts.PART_NAMES
    run: Path  # the run folder the torch worker rebuilds the module from
    path: Path  # the .onnx file
    input: Path  # .npy of the inputs at the largest batch; a cell times its first rows
    file_bytes: int
    export_max_abs_error: float
    flops_per_sample: int
    input_shape: list
    ops: list  # the ONNX graph's op types, in order
    optimized_ops: dict = dataclasses.field(default_factory=dict)  # threads (str) -> ops after onnxruntime's optimiser

    @property
    def key(self) -> str:
        return f"{self.model}/{self.part}"

    def to_json(self, session_create_ms: dict, torch_load_ms: dict) -> dict:
        """What results record (the temporary paths are gone by then)."""
        return {
            "file_bytes": self.file_bytes,
            "export_max_abs_error": self.export_max_abs_error,
            "flops_per_sample": self.flops_per_sample,
            "input_shape": self.input_shape,
            "ops": self.ops,
            "optimized_ops": self.optimized_ops,
            "session_create_ms": session_create_ms,
            "torch_load_ms": torch_load_ms,
        }


def make_run(folder: Path, name: str) -> Path:
    """A run folder of ``name`` with seeded weights, laid out as `zoo train` writes one (inference
    speed does not depend on training)."""
    from zoo.train.run_folder import write_untrained_run

    return write_untrained_run(folder, name, seed=SEED, note="benchmark run: seeded initial weights, not trained")


def count_flops(module, example) -> int:
    """FLOPs of one forward pass, as torch's FlopCounterMode counts them (2 x MACs of matmuls and
    convolutions; elementwise ops are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return int(counter.get_total_flops())


def resolve_models(names) -> list:
    """Registered names; each argument may be a wildcard. Unknown names suggest close ones."""
    import zoo

    if not names:
        return zoo.list_models()
    chosen = []
    for name in names:
        matches = zoo.list_models(name) or [zoo.get_spec(name).name]  # get_spec raises with a hint
        chosen += [m for m in matches if m not in chosen]
    return chosen


def prepare(models, work: Path, max_batch: int, log) -> dict:
    """Export every model and write each part's inputs; returns {model: {part: PreparedPart}}."""
    import onnx
    import torch

    from zoo.export.onnx import export_artifacts
    from zoo.export.parts import make_parts
    from zoo.train.run_folder import load_run

    artifacts = {}
    for name in models:
        t0 = time.perf_counter()
        run_dir = make_run(work / "runs" / name, name)
        with contextlib.redirect_stderr(io.StringIO()):
            exported = {a.part: a for a in export_artifacts(run_dir)}
        run = load_run(run_dir)
        gen = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            # The same seeded inputs for both runtimes; codes spread as the prior spreads them.
            data = {
                part.name: (part.module, part.make_input(max_batch, gen)) for part in make_parts(run.model, run.prior)
            }
        artifacts[name] = {}
        for part, (module, inputs) in data.items():
            path = work / "inputs" / f"{name}-{part}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, inputs.numpy().astype(np.float32))
            exported_part = exported[part]
            artifacts[name][part] = PreparedPart(
                model=name,
                part=part,
                run=run_dir,
                path=exported_part.path,
                input=path,
                file_bytes=exported_part.bytes,
                export_max_abs_error=exported_part.max_abs_error,
                flops_per_sample=count_flops(module.eval(), inputs[:1]),
                input_shape=list(inputs.shape[1:]),
                ops=[n.op_type for n in onnx.load(str(exported_part.path)).graph.node],
            )
        log(f"exported {name} in {time.perf_counter() - t0:.1f} s")
    return artifacts
