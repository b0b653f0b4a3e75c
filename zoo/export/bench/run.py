"""`zoo bench` from start to finish: settings from the command line, the run (prepare, then measure
per thread budget), the result assembled from the measurements, and the files written."""

import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.export.bench import results
from zoo.export.bench.locking import one_at_a_time, terminate_cleanly
from zoo.export.bench.machine import default_results_folder, describe, slug
from zoo.export.bench.markdown import markdown
from zoo.export.bench.notes import notes
from zoo.export.bench.plot import plot
from zoo.export.bench.preparation import prepare, resolve_models
from zoo.export.bench.scheduling import measure_threads
from zoo.export.bench.settings import DEFAULT_OPTIONS, STEM, Settings


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load_average() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def make_settings(quick=False, threads=None, batches=None, tune=None) -> Settings:
    """The command line's choices over the full run's or --quick's settings; threads default to 1
    and all cores."""
    changes = {}
    if threads:
        changes["threads"] = tuple(sorted(set(threads)))
    if batches:
        changes["batches"] = tuple(sorted(set(batches)))
    if tune is not None:
        changes["tune_enabled"] = tune
    settings = Settings.quick(**changes) if quick else Settings(**changes)
    if not settings.threads:
        settings = dataclasses.replace(settings, threads=tuple(sorted({1, os.cpu_count() or 1})))
    if any(t < 1 for t in settings.threads) or any(b < 1 for b in settings.batches):
        raise ZooError("thread counts and batch sizes must be positive")
    return settings


def _read_earlier(compare_with) -> dict | None:
    if not compare_with:
        return None
    try:
        return {**json.loads(Path(compare_with).read_text()), "file": str(compare_with)}
    except (OSError, ValueError) as exc:
        raise ZooError(f"--compare {compare_with}: cannot read it as a benchmark result ({exc})") from None


def run_benchmark(
    models=None, quick=False, out_dir=None, threads=None, batches=None, tune=None, compare_with=None, log=_log
) -> dict:
    """Measure, write ``<out_dir>/inference-<machine>-<date>.{json,md,png}`` and return
    ``{"result": ..., "json": path, "markdown": path, "plot": path}``. ``out_dir`` defaults to
    benchmarks/results in a source checkout, ./benchmark-results elsewhere."""
    names = resolve_models(models)
    settings = make_settings(quick, threads, batches, tune)
    earlier = _read_earlier(compare_with)

    with (
        terminate_cleanly(),
        one_at_a_time(wait=not quick, log=log) as alone,
        tempfile.TemporaryDirectory(prefix="zoo-bench-") as work,
    ):
        load_start = _load_average()
        started = time.perf_counter()
        log(
            f"zoo bench: {', '.join(names)}; batches {list(settings.batches)}; threads {list(settings.threads)}; "
            f"{'quick' if quick else 'full'} mode; load average {load_start}"
        )
        work = Path(work)
        artifacts = prepare(names, work, max(settings.batches), log)
        phases = {"prepare": time.perf_counter() - started}
        measured = {}
        for t in settings.threads:
            t0 = time.perf_counter()
            measured[t] = measure_threads(t, names, artifacts, settings, work, log)
            phases[f"measure_{t}_threads"] = time.perf_counter() - t0

    result = assemble(
        settings, measured, artifacts, quick=quick, alone=alone, load_start=load_start, started=started, phases=phases
    )
    if earlier is not None:
        result["reproducibility"] = results.compare(earlier, result["rows"])
    return write(result, Path(out_dir) if out_dir else default_results_folder())


def assemble(
    settings: Settings,
    measured: dict,
    artifacts: dict,
    *,
    quick: bool,
    alone: bool,
    load_start: list,
    started: float,
    phases: dict,
) -> dict:
    """The result's JSON form, from the measurements of every thread budget. ``started``: the run's
    perf_counter() at its start; ``phases``: seconds per phase."""
    sources = results.ceiling_sources(measured, settings.ceiling_n)
    ceilings = {t: max(per.values()) for t, per in sources.items()}
    floors = results.floors(measured)
    rows = results.build_rows([c for m in measured.values() for c in m.cells], ceilings, floors)
    tuning = {f"{k}@{t}": v.to_json() for t, m in measured.items() for k, v in m.tuning.items()}
    ort_imported_torch = any(
        module.split(".")[0] == "torch" for m in measured.values() for module in m.worker_modules["onnxruntime"]
    )
    load_end = _load_average()
    machine = describe()
    return {
        "benchmark": STEM,
        "machine": machine,
        "versions": results.versions(),
        "ceiling_gflops": ceilings[str(max(settings.threads))],
        "ceiling_gflops_by_threads": ceilings,
        "ceiling_sources": sources,
        "floors": {
            t: {"onnxruntime_identity_p50_us": f["onnxruntime"], "torch_linear_p50_us": f["torch"]}
            for t, f in floors.items()
        },
        "rows": rows,
        "mode": "quick" if quick else "full",
        "settings": {**settings.to_json(), "default_options": DEFAULT_OPTIONS},
        "artifacts": results.artifacts_json(artifacts, rows),
        "tuning": {"artifacts": tuning, "summary": results.tuning_summary(tuning)} if tuning else {},
        "load_average": {"start": load_start, "end": load_end},
        "seconds": time.perf_counter() - started,
        "phase_seconds": phases,
        "notes": notes(
            settings,
            quick=quick,
            alone=alone,
            machine=machine,
            load_start=load_start,
            load_end=load_end,
            cores=os.cpu_count() or 1,
            ort_imported_torch=ort_imported_torch,
        ),
        "onnxruntime_worker_imported_torch": ort_imported_torch,
    }


def write(result: dict, out_dir: Path) -> dict:
    """The result's JSON, Markdown and plot, each written atomically."""
    from zoo.core.atomic import atomic_write, atomic_write_text, write_json

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create output folder {out_dir} ({exc.strerror})") from None
    base = out_dir / f"{STEM}-{slug(result['machine'])}-{result['machine']['date']}"
    paths = {"json": base.with_suffix(".json"), "markdown": base.with_suffix(".md"), "plot": base.with_suffix(".png")}
    write_json(paths["json"], result)
    atomic_write_text(paths["markdown"], markdown(result))
    atomic_write(paths["plot"], lambda tmp: plot(result, tmp))
    return {"result": result, **paths}
