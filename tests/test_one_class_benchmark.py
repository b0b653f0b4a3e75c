"""`python -m benchmarks.quality.one_class --quick` runs end to end on the small generated datasets: the selection on
held-out training data, the one-class protocol on both datasets, Fashion-MNIST -> MNIST, and the
JSON, Markdown and plot it writes. No AUROC is asserted beyond its range (one epoch on 50 images)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_one_class_run_writes_every_result(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.quality.one_class",
            "--quick",
            "--models",
            "deep-ae",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result_file,) = tmp_path.glob("one_class-*.json")
    result = json.loads(result_file.read_text())
    assert result["quick"] and result["machine"]["threads"] >= 1 and result["seconds"] > 0
    (model,) = result["models"]
    assert model["model"] == "deep-ae" and model["epochs"] == 1
    selection = model["selection"]
    assert [t["settings"] for t in selection["candidates"]] == [
        {"latent": "32"},
        {"latent": "16"},
        {"latent": "64"},
        {"hidden": "256,64"},
    ]
    assert selection["chosen"] in [t["settings"] for t in selection["candidates"]]
    assert model["settings"] == selection["chosen"]  # the test protocol runs what selection chose
    for dataset in ("mnist", "fashion-mnist"):
        per_class = model["datasets"][dataset]["per_class"]
        assert list(per_class) == ["0"] and 0 <= per_class["0"]["auroc"] <= 1
    assert 0 <= model["fashion_to_mnist"]["auroc"] <= 1
    markdown = result_file.with_suffix(".md").read_text()
    assert "| zoo deep-ae, its own score |" in markdown and "Deep SVDD" in markdown and "hidden=256,64" in markdown
    assert result_file.with_suffix(".png").stat().st_size > 10_000
