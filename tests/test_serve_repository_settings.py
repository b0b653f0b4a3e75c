"""`zoo serve` of a model repository runs with the settings its config.pbtxt files hold (max batch,
queue delay, instances, threads), command-line flags override them and the banner says which came
from where, and a config it cannot honour is one line at start-up. (tests/test_serve_repository.py
covers writing and reading the repository itself.)"""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from export_helpers import run_zoo_without_torch
from test_serve_helpers import Server, vae_run

from zoo.cli import cli


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """The VAE exported into a repository with every serving setting written to its config.pbtxt."""
    folder = tmp_path_factory.mktemp("configured") / "models"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            str(vae_run(tmp_path_factory)),
            "--repository",
            str(folder),
            "--max-batch",
            "4",
            "--max-delay-ms",
            "0.5",
            "--instances",
            "2",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    return folder


def banner_line(server, model: str) -> str:
    """The settings line printed under a model's name."""
    lines = server.banner
    return lines[next(i for i, line in enumerate(lines) if line.strip().startswith(model)) + 1]


def test_zoo_serve_takes_its_settings_from_config_pbtxt(configured, tmp_path):
    server = Server(configured, log=tmp_path / "serve.log")
    try:
        line = banner_line(server, "vae-decoder")
        for shown in (
            "max batch 4 [config.pbtxt]",
            "delay 0.5 ms [config.pbtxt]",
            "2 instances [config.pbtxt]",
            "intra-op threads 1 [config.pbtxt]",
            "inter-op threads auto",
        ):
            assert shown in line, line
        five = server.client.post(
            "/v2/models/vae-decoder/infer",
            json={"inputs": [{"name": "z", "shape": [5, 20], "datatype": "FP32", "data": [0.0] * 100}]},
        )
        assert five.status_code == 400 and "at most 4" in five.json()["error"]
        four = server.client.post(
            "/v2/models/vae-decoder/infer",
            json={"inputs": [{"name": "z", "shape": [4, 20], "datatype": "FP32", "data": [0.0] * 80}]},
        )
        assert four.status_code == 200
    finally:
        assert server.stop() == 0


def test_export_with_a_delay_of_0_is_served_with_a_delay_of_0(tmp_path_factory, tmp_path):
    """The issue's case: `zoo export --max-delay-ms 0` wrote an empty dynamic_batching block, which
    Triton reads as 0 and zoo serve read as its 2 ms default."""
    folder = tmp_path / "models"
    result = CliRunner().invoke(
        cli, ["export", str(vae_run(tmp_path_factory)), "--repository", str(folder), "--max-delay-ms", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "max_queue_delay_microseconds: 0" in (folder / "vae-decoder" / "config.pbtxt").read_text()
    server = Server(folder, log=tmp_path / "serve.log")
    try:
        assert "delay 0 ms [config.pbtxt]" in banner_line(server, "vae-decoder")
    finally:
        assert server.stop() == 0


def test_flags_override_config_pbtxt_and_the_banner_says_so(configured, tmp_path):
    server = Server(configured, "--max-batch", "16", "--instances", "1", log=tmp_path / "serve.log")
    try:
        line = banner_line(server, "vae-decoder")
        assert "max batch 16 [--max-batch]" in line and "1 instance [--instances]" in line
        assert "delay 0.5 ms [config.pbtxt]" in line
        rows = {"inputs": [{"name": "z", "shape": [16, 20], "datatype": "FP32", "data": [0.0] * 320}]}
        assert server.client.post("/v2/models/vae-decoder/infer", json=rows).status_code == 200
    finally:
        assert server.stop() == 0


def test_instances_are_parallel_sessions(configured):
    from zoo.serve.inference.models import load_models

    models = load_models([configured])
    decoder = models["vae-decoder"]
    assert decoder.serving.instances == 2 and len(decoder.sessions) == 2
    assert decoder.sessions[0] is not decoder.sessions[1]
    z = np.random.default_rng(0).standard_normal((3, 20), dtype=np.float32)
    first, second = (decoder.runner(i)(z) for i in range(2))
    np.testing.assert_array_equal(first[0], second[0])


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda text: text + "response_cache { enable: true }\n", "field response_cache is not supported"),
        (lambda text: text.replace("dims: 20", "dims: 21", 1), "dims [21]"),
        (lambda text: text + "max_batch_size: }\n", "config.pbtxt"),
    ],
)
def test_a_config_zoo_serve_cannot_honour_is_one_line_at_startup(configured, tmp_path, edit, fragment):
    repo = tmp_path / "models"
    shutil.copytree(configured, repo)
    config = repo / "vae-decoder" / "config.pbtxt"
    config.write_text(edit(config.read_text()))
    result = run_zoo_without_torch("serve", repo, "--port", "0")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(config) in line and fragment in line, line
    assert "serving" not in result.stdout  # nothing started
