"""`zoo bench` / `python -m benchmarks.export.inference`: the --quick smoke run writes a well-formed result.

Structure and sanity only (every number finite, positive where it must be); never timings, which
belong to the benchmark's own results on a quiet machine.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from zoo.cli import cli
from zoo.export import bench
from zoo.export.parts import PART_NAMES

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["pca-ae", "vae"]  # the smallest linear model and one with a two-output encoder
ROW_KEYS = {
    "model",
    "part",
    "runtime",
    "batch",
    "threads",
    "p50_us",
    "p90_us",
    "p99_us",
    "samples_per_second",
    "gflops",
    "ceiling_fraction",
    "max_abs_diff",
}
POSITIVE = (
    "p50_us",
    "p90_us",
    "p99_us",
    "samples_per_second",
    "gflops",
    "ceiling_fraction",
    "torch_over_onnxruntime",
    "floor_multiple",
    "setup_ms",
    "file_bytes",
    "flops_per_sample",
    "calls",
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick run of the script on two small models, in a fresh process like CI's."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.export.inference", *MODELS, "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (json_path,) = out.glob("inference-*.json")
    return {"out": out, "json": json_path, "result": json.loads(json_path.read_text()), "stderr": proc.stderr}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_top_level_structure(quick):
    result = quick["result"]
    assert {"machine", "versions", "ceiling_gflops", "rows"} <= set(result)
    assert result["machine"]["cpu"] and result["machine"]["cores"] >= 1
    assert {"torch", "onnxruntime", "onnx"} <= set(result["versions"])
    assert _finite(result["ceiling_gflops"]) and result["ceiling_gflops"] > 0
    threads = sorted({1, os.cpu_count()})
    assert sorted(map(int, result["ceiling_gflops_by_threads"])) == threads
    for per in result["floors"].values():
        assert all(_finite(v) and v > 0 for v in per.values())
    assert result["notes"] and result["mode"] == "quick"


def test_rows_cover_every_model_part_runtime_batch_and_thread_count(quick):
    result = quick["result"]
    settings = result["settings"]
    threads = sorted({1, os.cpu_count()})
    assert settings["threads"] == threads
    want = {
        (m, p, rt, b, t)
        for m in MODELS
        for p in PART_NAMES
        for rt in bench.RUNTIMES
        for b in settings["batches"]
        for t in threads
    }
    have = [(r["model"], r["part"], r["runtime"], r["batch"], r["threads"]) for r in result["rows"]]
    assert sorted(have) == sorted(want)  # each cell exactly once


def test_every_number_is_finite_and_positive(quick):
    for row in quick["result"]["rows"]:
        assert ROW_KEYS <= set(row), row
        for key in POSITIVE:
            assert _finite(row[key]) and row[key] > 0, (key, row)
        assert row["p50_us"] <= row["p90_us"] <= row["p99_us"]
        # The two runtimes agree on the same inputs (fp32; the exporter's own tolerance).
        assert _finite(row["max_abs_diff"]) and 0 <= row["max_abs_diff"] < 1e-4
        ratio = row["gflops"] / row["flops_per_sample"] * 1e9 / row["samples_per_second"]
        assert ratio == pytest.approx(1, rel=1e-9)


def test_tuning_artifacts_and_processes_are_recorded(quick):
    result = quick["result"]
    tuning = result["tuning"]["artifacts"]
    threads = sorted({1, os.cpu_count()})
    assert set(tuning) == {f"{m}/{p}@{t}" for m in MODELS for p in PART_NAMES for t in threads}
    for key, entry in tuning.items():
        budget = int(key.rsplit("@", 1)[1])
        assert set(entry["tuned_options"]) == set(bench.DEFAULT_OPTIONS)
        assert sorted(map(int, entry["per_batch"])) == result["settings"]["batches"]
        for pick in entry["per_batch"].values():
            assert 1 <= pick["options"]["intra_op_num_threads"] <= budget
            assert _finite(pick["speedup"]) and pick["speedup"] > 0
    for row in result["rows"]:  # each onnxruntime cell ran with the options tuning chose for it
        if row["runtime"] == "onnxruntime":
            pick = tuning[f"{row['model']}/{row['part']}@{row['threads']}"]["per_batch"][str(row["batch"])]
            assert row["options"] == pick["options"]
    for model in MODELS:
        for part in PART_NAMES:
            art = result["artifacts"][model][part]
            assert art["file_bytes"] > 0 and art["flops_per_sample"] > 0 and art["ops"]
            assert all(ms > 0 for ms in art["session_create_ms"].values())
    assert result["onnxruntime_worker_imported_torch"] is False


def test_markdown_and_plot_are_written_beside_the_json(quick):
    base = quick["json"].with_suffix("")
    text = base.with_suffix(".md").read_text()
    assert "| model | part |" in text and "ceiling" in text
    for model in MODELS:
        assert f"| {model} |" in text
    with Image.open(base.with_suffix(".png")) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 200


def test_compare_reports_how_far_ratios_moved():
    def rows(ratio):
        return [
            {
                "model": "m",
                "part": "decoder",
                "runtime": "onnxruntime",
                "batch": b,
                "threads": 1,
                "torch_over_onnxruntime": ratio * b,
            }
            for b in (1, 8)
        ]

    report = bench.compare({"rows": rows(2.0), "file": "old.json"}, rows(2.2))
    assert report["cells"] == 2 and report["within_tolerance"] == 2
    assert report["median_abs_change"] == pytest.approx(0.1)
    assert bench.compare({"rows": rows(2.0)}, rows(3.0))["within_tolerance"] == 0


def test_unknown_model_is_one_error_line():
    result = CliRunner().invoke(cli, ["bench", "no-such-model", "--quick"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: unknown model 'no-such-model'")
    assert "Traceback" not in result.output
