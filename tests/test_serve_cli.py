"""`zoo serve`'s command line: how PATH arguments become model names, and the one-line errors a user
can cause, all with torch blocked."""

import shutil
import socket
import subprocess
import sys

import pytest
from export_helpers import run_zoo_without_torch
from test_serve_helpers import Server, plane_run, vae_run

import zoo
from zoo.serve.inference.models import load_models

PARTS = ("decoder", "encoder", "generator")


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    return vae_run(tmp_path_factory)


def test_a_run_folder_serves_each_part_under_the_folder_name(vae):
    assert list(load_models([vae])) == [f"vae-{part}" for part in PARTS]
    assert list(load_models([vae], name="digits")) == [f"digits-{part}" for part in PARTS]


def test_a_single_file_is_named_from_its_metadata(vae, tmp_path_factory):
    plane = plane_run(tmp_path_factory)  # a vae in a folder named "plane": the file's zoo.model wins
    models = load_models([plane / "decoder.onnx", vae / "generator.onnx"])
    assert list(models) == ["vae-decoder", "vae-generator"]
    assert models["vae-decoder"].input.shape == (2,)
    assert list(load_models([plane / "decoder.onnx"], name="plane")) == ["plane-decoder"]


def test_the_part_comes_from_metadata_not_the_file_name(vae, tmp_path):
    shutil.copy(vae / "generator.onnx", tmp_path / "renamed.onnx")
    assert list(load_models([tmp_path])) == [f"{tmp_path.name}-generator"]


def test_two_models_with_one_name_are_refused(vae):
    with pytest.raises(zoo.ZooError, match="two models are named vae-decoder"):
        load_models([vae, vae / "decoder.onnx"])


def error_line(result) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def test_help_works_without_torch():
    result = run_zoo_without_torch("serve", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--max-batch", "--max-delay-ms", "--max-queue", "--token", "ZOO_SERVE_TOKEN", "--quiet"):
        assert option in result.stdout


def test_user_errors_are_one_line(vae, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    cases = {
        ("serve", tmp_path / "missing"): "no such file or folder",
        ("serve", tmp_path / "empty"): "no .onnx files",
        ("serve", tmp_path / "junk.onnx"): "not a valid ONNX model",
        ("serve", vae, vae, "--name", "x"): "give one PATH with it",
        ("serve", vae, "--name", "../x"): "must start with a letter or digit",
        ("serve", vae, vae): "two models are named",
    }
    for args, message in cases.items():
        assert message in error_line(run_zoo_without_torch(*args))


def test_a_taken_port_is_one_error(vae):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert "cannot listen on 127.0.0.1" in error_line(run_zoo_without_torch("serve", vae, "--port", port))


def test_zoo_serve_never_imports_torch_where_it_is_installed(vae, tmp_path):
    # The CLI finds its commands and the model plugins register without torch, so the server
    # process (the same one, not a replacement) never carries torch's memory.
    server = Server(vae, "--quiet", log=tmp_path / "log", torch_importable=True)
    try:
        pid = server.process.pid
        assert server.client.get("/v2/health/ready").status_code == 200
        assert open(f"/proc/{pid}/cmdline").read().split("\0")[1:3] == ["-m", "zoo"]
        assert "libtorch" not in open(f"/proc/{pid}/maps").read()
    finally:
        assert server.stop() == 0


def test_a_uvicorn_without_the_request_count_hook_is_refused_at_start(vae):
    """The in-flight count relies on uvicorn's _start_asgi_task (0.45 and later): on a uvicorn
    without it the server would start and misjudge every call under load, so it does not start."""
    older = (
        "import sys; sys.modules['torch'] = None; sys.argv[0] = 'zoo'; "
        "from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as P; del P._start_asgi_task; "
        "from zoo.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", older, "serve", str(vae), "--port", "0"], capture_output=True, text=True, timeout=120
    )
    line = error_line(result)
    assert "zoo serve needs uvicorn 0.45 or later" in line and "pip install 'uvicorn>=0.45'" in line
