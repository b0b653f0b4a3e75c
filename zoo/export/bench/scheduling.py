"""Step 2 of a run, once per thread budget: two worker processes, one per runtime; tuning, then
every cell's rounds spread over several passes over all the cells, with the references (matmul
ceiling, call floor) measured in every pass."""

import dataclasses
import time
from pathlib import Path

from zoo.export.bench.cells import TORCH, Cell, LoadedArtifact, settle
from zoo.export.bench.measuring import measure_cell, measure_variants
from zoo.export.bench.settings import DEFAULT_OPTIONS, RUNTIMES, Settings
from zoo.export.bench.tuning import search_knobs, untuned_finalists
from zoo.export.bench.worker_client import WorkerProcess


@dataclasses.dataclass
class ThreadMeasurement:
    """Everything measured at one thread budget."""

    threads: int
    ceiling_ns: dict = dataclasses.field(default_factory=lambda: {rt: [] for rt in RUNTIMES})  # every matmul
    floor_ns: dict = dataclasses.field(default_factory=lambda: {rt: [] for rt in RUNTIMES})  # every floor call
    tuning: dict = dataclasses.field(default_factory=dict)  # artifact key -> ArtifactTuning
    tune_seconds: float = 0.0
    worker_modules: dict = dataclasses.field(default_factory=dict)  # runtime -> torch/onnxruntime modules it imported
    cells: list = dataclasses.field(default_factory=list)


def load_artifact(ort_worker, torch_worker, artifact, threads: int, finalists: dict, work: Path) -> LoadedArtifact:
    """Open the PyTorch module and one timed session per finalist; record what onnxruntime's
    ORT_ENABLE_ALL optimiser makes of the graph (written once per thread budget)."""
    key = artifact.key
    optimized = work / "optimized" / f"{artifact.model}-{artifact.part}-{threads}.onnx"
    optimized.parent.mkdir(exist_ok=True)
    loaded = ort_worker(
        "load", key=key, path=str(artifact.path), options=DEFAULT_OPTIONS, optimized_path=str(optimized)
    )
    artifact.optimized_ops[str(threads)] = loaded["optimized_ops"]
    ort_worker("drop", key=key)
    # Each finalist's creation time is the row's session creation time when it is chosen.
    worker_keys = {TORCH: key}
    setup_ms = {TORCH: torch_worker("load", key=key, run=str(artifact.run), part=artifact.part)["setup_ms"]}
    for finalist, options in finalists.items():
        worker_keys[finalist] = f"{key}#{finalist}"
        setup_ms[finalist] = ort_worker("load", key=worker_keys[finalist], path=str(artifact.path), options=options)[
            "setup_ms"
        ]
    return LoadedArtifact(
        artifact=artifact, threads=threads, worker_keys=worker_keys, setup_ms=setup_ms, finalists=finalists
    )


def prepare_cells(
    ort_worker, torch_worker, measurement: ThreadMeasurement, models, artifacts: dict, settings: Settings, work: Path
) -> list:
    """Tune every artifact (step 1), open the sessions and modules the cells need, list the cells."""
    threads, cells = measurement.threads, []
    for name in models:
        for artifact in artifacts[name].values():
            if settings.tune_enabled:
                t0 = time.perf_counter()
                tuning = search_knobs(
                    lambda variants, artifact=artifact: measure_variants(ort_worker, artifact, variants, settings),
                    threads,
                    settings.tune_margin,
                )
                measurement.tuning[artifact.key] = tuning
                measurement.tune_seconds += time.perf_counter() - t0
                finalists = tuning.finalists
            else:
                finalists = untuned_finalists(threads)
            loaded = load_artifact(ort_worker, torch_worker, artifact, threads, finalists, work)
            cells += [Cell(loaded=loaded, batch=batch) for batch in settings.batches]
    return cells


def measure_threads(threads: int, models, artifacts: dict, settings: Settings, work: Path, log) -> ThreadMeasurement:
    """Everything measured at one thread budget: tuning, references, and every cell.

    The machine's slow stretches can last seconds, longer than one cell takes; so the rounds of every
    cell are spread over ``settings.passes`` passes over all the cells, and its quiet rounds found
    among them."""
    measurement = ThreadMeasurement(threads)
    with (
        WorkerProcess("onnxruntime", threads, work) as ort_worker,
        WorkerProcess("torch", threads, work) as torch_worker,
    ):
        workers = {"onnxruntime": ort_worker, "torch": torch_worker}
        cells = prepare_cells(ort_worker, torch_worker, measurement, models, artifacts, settings, work)
        log(f"  {threads} thread(s): tuned and loaded {len(models)} models in {measurement.tune_seconds:.1f} s")
        for visit in range(settings.passes):
            t0 = time.perf_counter()
            # The references in every pass, so that a change of machine load reaches them too.
            for runtime, worker in workers.items():
                measurement.ceiling_ns[runtime] += worker(
                    "matmul", n=settings.ceiling_n, calls=settings.ceiling_calls, warmup=visit == 0
                )["ns"]
                floor_timing = settings.timing(settings.floor_s).to_json()
                measurement.floor_ns[runtime] += worker("floor", timing=floor_timing)["ns"]
            for cell in cells:
                measure_cell(workers, cell, visit, settings, work)
            log(
                f"  {threads} thread(s): pass {visit + 1}/{settings.passes} over every cell in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        measurement.worker_modules = {runtime: worker("modules")["modules"] for runtime, worker in workers.items()}
    for cell in cells:
        cell.outcome = settle(cell, settings.quiet_keep, settings.tune_margin)
        if settings.tune_enabled:
            measurement.tuning[cell.artifact.key].per_batch[str(cell.batch)] = cell.outcome.pick
    measurement.cells = cells
    return measurement
