"""`python -m benchmarks.serving.serve_load --quick` runs end to end: every cell, the floors, the overload run, and
the JSON, Markdown and plot it writes. No timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

from test_serve_helpers import conv_run, vae_run

ROOT = Path(__file__).resolve().parents[1]


def test_quick_load_run_writes_every_result(tmp_path_factory, tmp_path):
    runs = [vae_run(tmp_path_factory), conv_run(tmp_path_factory)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.serving.serve_load",
            "--quick",
            "--out",
            str(tmp_path),
            "--runs",
            *map(str, runs),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # machine.publish: the Markdown on stdout, where it went on stderr.
    assert done.stdout.startswith("# zoo serve under load") and "## Targets" in done.stdout
    assert "its first table pastes into the README" in done.stderr and "wrote" not in done.stdout
    (result_file,) = tmp_path.glob("serve_load-*.json")
    result = json.loads(result_file.read_text())
    cells = {(c["model"], c["tensors"], c["batching"], c["concurrency"]) for c in result["cells"]}
    assert cells == {
        (m, t, b, c)
        for m in ("vae-generator", "conv-ae-decoder")
        for t in ("json", "binary")
        for b in ("on", "off")
        for c in (1, 8)
    }
    assert all(c["requests"] > 0 and c["errors"] == 0 and c["mean_batch"] >= 1 for c in result["cells"])
    assert [h["concurrency"] for h in result["hello"]] == [1, 8]
    assert set(result["inprocess"]) == {"vae-generator", "conv-ae-decoder", "no-work-generator"}
    # The floor that does no model work: served through the same path, its answers the right size.
    assert {(c["tensors"], c["concurrency"]) for c in result["no_work"]} == {
        (t, c) for t in ("json", "binary") for c in (1, 8)
    }
    assert all(c["requests"] > 0 and c["errors"] == 0 for c in result["no_work"])
    overload = result["overload"]
    assert overload["status_counts"].get("503", 0) > 0 and set(overload["status_counts"]) <= {"200", "503"}
    assert overload["rss_mb_max"] > 0 and result["targets"]
    # 1 and 2 worker processes, the same load client.
    assert {(w["workers"], w["tensors"]) for w in result["workers"]} == {
        (n, t) for n in (1, 2) for t in ("json", "binary")
    }
    assert all(w["rps"] > 0 and w["errors"] == 0 for w in result["workers"])
    markdown = result_file.with_suffix(".md").read_text()
    assert "## Worker processes" in markdown
    assert "| route | tensors | batching | concurrency | req/s |" in markdown and "## Targets" in markdown
    assert "## The same targets for a model that does no work" in markdown
    assert result_file.with_suffix(".png").stat().st_size > 10_000
