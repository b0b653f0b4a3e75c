"""From measurements to the result's figures: the references, one row per (model, part, runtime,
batch, threads), the tuning summary, and the comparison with an earlier result."""

import contextlib
import platform

import numpy as np

from zoo.export.bench.settings import RUNTIMES
from zoo.export.bench.timing import geomean, percentiles


def ceiling_sources(measured: dict, n: int) -> dict:
    """GFLOP/s (FLOPs per ns) of each library's fastest n x n product, per thread budget. The fastest:
    noise only ever slows a call down, and a 0.1 s product on a shared machine is often caught by
    another process, which a ceiling should not count."""
    return {str(t): {rt: 2 * n**3 / min(m.ceiling_ns[rt]) for rt in RUNTIMES} for t, m in measured.items()}


def floors(measured: dict) -> dict:
    """p50 (us) of the do-nothing call, per thread budget and runtime."""
    return {str(t): {rt: percentiles(m.floor_ns[rt])["p50_us"] for rt in RUNTIMES} for t, m in measured.items()}


def build_rows(cells: list, ceilings: dict, floor_us: dict) -> list:
    rows = []
    for cell in cells:
        artifact, outcome, t = cell.artifact, cell.outcome, cell.threads
        stats = outcome.stats
        ratio = stats["torch"]["p50_us"] / stats["onnxruntime"]["p50_us"]
        for rt in RUNTIMES:
            sps = cell.batch / (stats[rt]["p50_us"] / 1e6)
            gflops = artifact.flops_per_sample * sps / 1e9
            rows.append(
                {
                    "model": artifact.model,
                    "part": artifact.part,
                    "runtime": rt,
                    "batch": cell.batch,
                    "threads": t,
                    **stats[rt],
                    "samples_per_second": sps,
                    "gflops": gflops,
                    "ceiling_fraction": gflops / ceilings[str(t)],
                    "max_abs_diff": outcome.max_abs_diff,
                    "torch_over_onnxruntime": ratio,
                    "floor_multiple": stats[rt]["p50_us"] / floor_us[str(t)][rt],
                    "setup_ms": outcome.setup_ms[rt],
                    "file_bytes": artifact.file_bytes,
                    "flops_per_sample": artifact.flops_per_sample,
                    **(
                        {"options": outcome.options, "tuning_choice": outcome.choice}
                        if rt == "onnxruntime"
                        else {"options": {"inference_mode": True, "num_threads": t}}
                    ),
                }
            )
    return rows


def artifacts_json(artifacts: dict, rows: list) -> dict:
    """{model: {part: what results record of the artifact}}, with each runtime's set-up time per
    thread budget taken from the rows."""

    def setup(artifact, runtime):
        return {
            str(r["threads"]): r["setup_ms"]
            for r in rows
            if r["model"] == artifact.model and r["part"] == artifact.part and r["runtime"] == runtime
        }

    return {
        name: {
            part: artifact.to_json(setup(artifact, "onnxruntime"), setup(artifact, "torch"))
            for part, artifact in parts.items()
        }
        for name, parts in artifacts.items()
    }


def tuning_summary(tuning: dict) -> dict:
    """Per batch size: which finalist won how often and the gain over the defaults; and which
    session-option values the one-knob-at-a-time search kept where its result was used.
    ``tuning``: {"<model>/<part>@<threads>": ArtifactTuning as JSON}."""
    by_batch, wins = {}, {}
    for entry in tuning.values():
        used = False
        for batch, pick in entry["per_batch"].items():
            summary = by_batch.setdefault(batch, {"choices": {}, "speedups": []})
            summary["choices"][pick["choice"]] = summary["choices"].get(pick["choice"], 0) + 1
            summary["speedups"].append(pick["speedup"])
            used = used or pick["choice"] != "defaults"
        if used:
            for knob, value in entry["changed"].items():
                wins[f"{knob}={value}"] = wins.get(f"{knob}={value}", 0) + 1
    return {
        "artifacts_tuned": len(tuning),
        "knob_values_kept": wins,
        "by_batch": {
            b: {"choices": v["choices"], "geomean_speedup": geomean(v["speedups"]), "max_speedup": max(v["speedups"])}
            for b, v in by_batch.items()
        },
    }


def compare(old: dict, rows: list, tolerance: float = 0.15) -> dict:
    """Each cell's torch/onnxruntime ratio against the same cell of an earlier result."""

    def ratios(rs):
        return {
            (r["model"], r["part"], r["batch"], r["threads"]): r["torch_over_onnxruntime"]
            for r in rs
            if r["runtime"] == "onnxruntime"
        }

    before, now = ratios(old.get("rows", [])), ratios(rows)
    changes = {k: now[k] / before[k] - 1 for k in now if k in before}
    if not changes:
        return {"cells": 0, "note": "no cell in common with the earlier result"}
    worst = sorted(changes.items(), key=lambda kv: -abs(kv[1]))
    within = sum(abs(c) <= tolerance for c in changes.values())
    return {
        "against": old.get("file", ""),
        "tolerance": tolerance,
        "cells": len(changes),
        "within_tolerance": within,
        "fraction_within": within / len(changes),
        "median_abs_change": float(np.median([abs(c) for c in changes.values()])),
        "by_batch": {
            str(b): float(np.median([abs(c) for k, c in changes.items() if k[2] == b]))
            for b in sorted({k[2] for k in changes})
        },
        "worst": [{"model": k[0], "part": k[1], "batch": k[2], "threads": k[3], "change": c} for k, c in worst[:8]],
    }


def versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
    }
    with contextlib.suppress(ImportError):
        import onnxscript

        found["onnxscript"] = onnxscript.__version__
    return found
