"""Hostile and mistaken inputs: each ends with one clear line and a non-zero exit, and writes nothing."""

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers, whatever pytest's import mode
from export_helpers import exported, leftovers, run_zoo_without_torch  # noqa: E402
from helpers import assert_one_line_error, install_distribution, run_zoo  # noqa: E402
from tiny_data import write_tiny_idx  # noqa: E402

import zoo  # noqa: E402
from zoo.data import locate  # noqa: E402
from zoo.export import runtime  # noqa: E402


def test_data_dir_without_the_dataset_is_the_only_place_looked(tmp_path):
    # The usual places (ZOO_DATA_DIR here) hold mnist; an explicit --data-dir must not fall back to them.
    assert locate("mnist")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_zoo("train", "deep-ae", "--data-dir", empty, "--epochs", "1", "--out", tmp_path / "run")
    assert_one_line_error(result, "not found in --data-dir", str(empty))
    assert not (tmp_path / "run").exists()


def test_data_dir_holding_the_dataset_is_used(tmp_path):
    write_tiny_idx(tmp_path / "mine" / "mnist", n_train=64, n_test=32, seed=7)
    run = tmp_path / "run"
    run_zoo(
        "train",
        "pca-ae",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp_path / "mine",
        "--epochs",
        "1",
        "--out",
        run,
        check=True,
    )
    config = json.loads((run / "config.json").read_text())
    assert config["data_source"] == str((tmp_path / "mine" / "mnist").resolve())


def edited_metadata(source: Path, target: Path, key: str, value: str) -> Path:
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
    onnx.save(model, str(target))
    return target


def test_metadata_that_disagrees_with_the_graph_is_refused(tmp_path, tmp_path_factory):
    vae = exported("vae", tmp_path_factory)
    huge = edited_metadata(vae["generator"], tmp_path / "generator.onnx", "zoo.latent_shape", "[100000000000]")
    out = tmp_path / "samples.png"
    result = run_zoo_without_torch("sample", huge, "-n", "4", "-o", out)
    assert_one_line_error(result, "zoo.latent_shape", "does not match the graph", "export it again")
    assert not out.exists()
    for part, key in (("decoder", "zoo.data_shape"), ("encoder", "zoo.data_shape")):
        edited = edited_metadata(vae[part], tmp_path / f"{part}.onnx", key, "[1, 28, 29]")
        try:
            runtime.load(edited)
        except zoo.ZooError as exc:
            assert "does not match the graph" in str(exc)
        else:
            raise AssertionError(f"an edited {key} in the {part} was accepted")
    not_a_shape = edited_metadata(vae["decoder"], tmp_path / "bad.onnx", "zoo.latent_shape", '["x"]')
    assert_one_line_error(run_zoo_without_torch("sample", not_a_shape, "-o", out), "corrupt zoo.latent_shape")


@pytest.mark.parametrize(
    "latent, message",
    [
        (10**8, "does not fit the model in config.json"),  # builds on the meta device, then fails the header check
        (10**12, "cannot build vae from its settings"),  # too big even to describe
    ],
)
def test_absurd_config_is_refused_before_anything_is_built(tmp_path, tmp_path_factory, latent, message):
    source = exported("vae", tmp_path_factory)["run"]
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, run / name)
    config = json.loads((run / "config.json").read_text())
    config["model_config"]["latent"] = latent
    (run / "config.json").write_text(json.dumps(config))
    for command in (["export", run], ["eval", run]):
        assert_one_line_error(run_zoo(*command), "config.json", message)
    assert leftovers(run) == []


CRASHING_COMMAND = """
import zoo


@zoo.hookimpl
def register_commands(cli):
    @cli.command()
    def crash():
        raise RuntimeError("an unexpected failure\\nwith a second line")
"""


def test_an_exception_escaping_a_command_is_one_line(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(site, "zoo-crash", "zoo_crash", CRASHING_COMMAND, {"crash": "zoo_crash"})
    result = run_zoo("crash", env={"PYTHONPATH": str(site)})
    assert_one_line_error(result, "zoo crash failed unexpectedly", "RuntimeError: an unexpected failure", "ZOO_DEBUG=1")
    debug = run_zoo("crash", env={"PYTHONPATH": str(site), "ZOO_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "with a second line" in debug.stderr


def test_run_files_follow_the_umask_like_every_other_file(tmp_path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        run_zoo("train", "pca-ae", "--epochs", "1", "--out", run, check=True)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.iterdir()}
    assert modes["model.safetensors"] == modes["state.safetensors"] == modes["config.json"] == 0o644, modes
