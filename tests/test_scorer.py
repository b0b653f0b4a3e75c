"""scorer.onnx: the same inputs give the same anomaly scores (within 1e-4) from `zoo score`, from
the exported file in onnxruntime and from `zoo serve`, whose BOOL output travels in JSON and in
binary (as [batch, 1], Triton's shape for it); the file's zoo.score metadata holds the run's threshold
and the score's definition."""

import contextlib
import csv
import io
import json

import numpy as np
import pytest
from test_serve_helpers import Server, infer_json

from zoo.export import runtime

ROWS = 40  # test images sent to each scorer


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    """A VAE scoring by its negative ELBO (a score of its own, not the base class's) trained on the 4s
    of the small MNIST, exported, and scored by `zoo score` on the test split."""
    from zoo.evaluate.score import score_run
    from zoo.export.onnx import export_run
    from zoo.train.loop import train

    with contextlib.redirect_stderr(io.StringIO()):
        run = train(
            "vae",
            tmp_path_factory.mktemp("scorer") / "vae",
            epochs=1,
            device="cpu",
            seed=0,
            labels=["4"],
            sets={"score": "neg_elbo"},
        )
    files = export_run(run)
    report = score_run(run, top=0)
    scores = {int(r["index"]): float(r["score"]) for r in csv.DictReader(open(report["csv"]))}
    return run, files, scores


def test_export_writes_a_scorer_with_the_runs_threshold(scored_run):
    run, files, _ = scored_run
    scorer = runtime.load(files["scorer"])
    assert isinstance(scorer, runtime.Scorer)
    record = json.loads((run / "threshold.json").read_text())
    assert scorer.threshold == record["threshold"] and scorer.fpr == record["fpr"] == 0.01
    assert scorer.definition == record["definition"] and "negative ELBO" in scorer.definition
    assert [o.name for o in scorer.session.get_outputs()] == ["score", "anomalous"]
    assert [o.type for o in scorer.session.get_outputs()] == ["tensor(float)", "tensor(bool)"]


def _test_images(count: int) -> np.ndarray:
    from zoo.core.registry import get_dataset
    from zoo.data.loading import load_splits

    return (load_splits(get_dataset("mnist"), None, 0, "cpu").test[:count].numpy() / np.float32(255)).astype(np.float32)


def test_zoo_score_onnxruntime_and_the_server_give_the_same_scores(scored_run, tmp_path):
    run, files, zoo_scores = scored_run
    x = _test_images(ROWS)
    expected = np.array([zoo_scores[i] for i in range(ROWS)])
    local = runtime.Scorer(files["scorer"]).run(x)
    np.testing.assert_allclose(local["score"], expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(local["anomalous"], local["score"] > runtime.Scorer(files["scorer"]).threshold)
    assert 0 < local["anomalous"].sum() < ROWS  # a mix, so the flags are tested both ways

    server = Server(run, "--quiet", log=tmp_path / "serve.log")
    try:
        as_json = server.client.post("/v2/models/vae-scorer/infer", json=infer_json(x, "x")).json()
        outputs = {o["name"]: o for o in as_json["outputs"]}
        assert (outputs["score"]["datatype"], outputs["anomalous"]["datatype"]) == ("FP32", "BOOL")
        # [batch] in the file, [batch, 1] over the protocol, as Triton serves it (no empty dims there)
        assert outputs["anomalous"]["shape"] == outputs["score"]["shape"] == [ROWS, 1]
        np.testing.assert_allclose(outputs["score"]["data"], expected, rtol=0, atol=1e-4)
        assert outputs["anomalous"]["data"] == local["anomalous"].tolist()

        request = infer_json(
            x, "x", outputs=[{"name": n, "parameters": {"binary_data": True}} for n in ("score", "anomalous")]
        )
        response = server.client.post("/v2/models/vae-scorer/infer", json=request)
        length = int(response.headers["inference-header-content-length"])
        header, tail = json.loads(response.content[:length]), response.content[length:]
        sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
        assert sizes == [4 * ROWS, ROWS]  # FP32 little-endian, then one byte per BOOL
        np.testing.assert_allclose(np.frombuffer(tail[: sizes[0]], "<f4"), expected, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(np.frombuffer(tail[sizes[0] :], np.bool_), local["anomalous"])
        described = server.client.get("/v2/models/vae-scorer").json()
        assert {"name": "anomalous", "datatype": "BOOL", "shape": [-1, 1]} in described["outputs"]
        score = json.loads(described["parameters"]["zoo.score"])  # what the flags mean, for a client
        assert score["threshold"] == runtime.Scorer(files["scorer"]).threshold and score["fpr"] == 0.01
    finally:
        assert server.stop() == 0


def test_the_readmes_folder_scoring_example_runs_without_torch(scored_run, tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    text = (Path(__file__).resolve().parents[1] / "docs" / "anomaly-scores.md").read_text()
    section = text.split("## In an app", 1)[1]
    source = re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)
    assert len(source.strip().splitlines()) <= 14  # about a dozen lines
    _, files, _ = scored_run
    folder = tmp_path / "scans"
    (folder / "more").mkdir(parents=True)
    images = (_test_images(12)[:, 0] * 255).round().astype(np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / ("more" if i % 3 else ".") / f"scan{i:02d}.png")
    script = tmp_path / "score_folder.py"
    script.write_text(source)
    blocked = (
        "import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked, str(script), str(files["scorer"]), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("negative ELBO at the posterior mean") and "1% false-positive rate" in lines[0]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 12 and [float(r[0]) for r in rows] == sorted((float(r[0]) for r in rows), reverse=True)
    expected = runtime.Scorer(files["scorer"]).run(images[:, None].astype(np.float32) / 255)
    by_name = {Path(r[2]).name: (float(r[0]), r[1]) for r in rows}
    for i in range(12):
        score, flag = by_name[f"scan{i:02d}.png"]
        assert score == pytest.approx(float(expected["score"][i]), abs=1e-4)
        assert flag == ("ANOMALOUS" if expected["anomalous"][i] else "normal")
