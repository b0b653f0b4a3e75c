"""Timing through the workers: tuning's quick comparisons of session options, and the rounds of a
cell."""

import json
import math
from pathlib import Path

import numpy as np

from zoo.core.errors import ZooError
from zoo.export.bench.cells import TORCH, Cell
from zoo.export.bench.preparation import PreparedPart
from zoo.export.bench.settings import Settings
from zoo.export.bench.timing import percentiles, quiet_stats


def measure_variants(ort_worker, artifact: PreparedPart, variants: list, settings: Settings) -> list:
    """p50 (us) per tuning batch size for each variant (session options), measured in interleaved
    rounds on fresh sessions. A variant this build cannot load gets infinity."""
    sessions = {}  # options, as JSON -> worker key (None where it would not load)
    for options in variants:
        options_key = json.dumps(options, sort_keys=True)
        if options_key not in sessions:
            worker_key = f"{artifact.key}#{len(sessions)}"
            try:
                ort_worker("load", key=worker_key, path=str(artifact.path), options=options)
                sessions[options_key] = worker_key
            except ZooError:
                sessions[options_key] = None
    batches = settings.tune_batches
    rounds = [{b: [] for b in batches} for _ in variants]
    for _ in range(settings.tune_rounds):
        for i, options in enumerate(variants):
            for batch in batches:
                worker_key = sessions[json.dumps(options, sort_keys=True)]
                if worker_key:
                    rounds[i][batch].append(
                        ort_worker(
                            "time",
                            key=worker_key,
                            input=str(artifact.input),
                            batch=batch,
                            timing=settings.tune_timing().to_json(),
                        )["ns"]
                    )
    for worker_key in filter(None, sessions.values()):
        ort_worker("drop", key=worker_key)
    return [
        {b: (quiet_stats(v, settings.quiet_keep)["p50_us"] if v else math.inf) for b, v in per.items()}
        for per in rounds
    ]


def rounds_due(cell: Cell, visit: int, passes: int) -> int:
    """Rounds ``cell`` should have had by the end of visit ``visit`` (0-based): one until the first
    round has planned them, then the planned rounds spread evenly over the passes."""
    if cell.planned_rounds is None:
        return 1
    if passes == 1:
        return cell.planned_rounds
    return 1 + visit * (cell.planned_rounds - 1) // (passes - 1)


def plan_rounds(first_round_p50_us: list, settings: Settings) -> int:
    """``settings.rounds``, fewer where calls are slow (never under ``settings.min_rounds``), so that
    each entry times about ``settings.cell_s``."""
    slowest_s = max(first_round_p50_us) / 1e6
    return int(min(settings.rounds, max(settings.min_rounds, settings.cell_s / slowest_s)))


def max_abs_diffs(saved: dict) -> dict:
    """Each finalist's largest difference from PyTorch's outputs on the same inputs."""
    outputs = {}
    for entry, path in saved.items():
        with np.load(path) as npz:
            outputs[entry] = [npz[f"arr_{i}"].astype(np.float64) for i in range(len(npz.files))]
    return {
        e: max(float(np.max(np.abs(a - b))) for a, b in zip(outputs[e], outputs[TORCH])) for e in saved if e != TORCH
    }


def measure_cell(workers: dict, cell: Cell, visit: int, settings: Settings, work: Path) -> None:
    """Visit ``visit`` (0-based) of a cell. Each round times PyTorch and every onnxruntime finalist
    once, in an order that rotates every round; the call times go to ``cell.samples[entry]``, one
    list per round. The first visit times one round, saves every entry's outputs for the accuracy
    check and plans the rounds; the later visits spread the rest evenly over the remaining passes."""
    entries = cell.loaded.entries
    saved = {e: work / f"out-{i}.npz" for i, e in enumerate(entries)}
    while cell.rounds_done < rounds_due(cell, visit, settings.passes):
        r = cell.rounds_done
        for entry in entries[r % len(entries) :] + entries[: r % len(entries)]:
            worker = workers[TORCH if entry == TORCH else "onnxruntime"]
            previous = cell.round_p50_us[entry]
            timing = settings.timing(
                settings.cell_s / (cell.planned_rounds or settings.rounds),
                previous_ns=previous[-1] * 1e3 if previous else None,
            )
            ns = worker(
                "time",
                key=cell.loaded.worker_keys[entry],
                input=str(cell.artifact.input),
                batch=cell.batch,
                timing=timing.to_json(),
                save=None if previous else str(saved[entry]),
            )["ns"]
            cell.samples[entry].append(ns)
            previous.append(percentiles(ns)["p50_us"])
        if cell.planned_rounds is None:
            cell.planned_rounds = plan_rounds([cell.round_p50_us[e][0] for e in entries], settings)
            cell.max_abs_diff = max_abs_diffs(saved)
