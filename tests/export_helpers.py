"""Shared by the export, runtime and README tests: one briefly trained and exported run per model.

Training and exporting take seconds per model, so each model is done once per test session and the
result cached here (a module-level cache, because pytest fixtures defined in one test module are
not shared with another).
"""

import contextlib
import io
import subprocess
import sys
from pathlib import Path

SUBSET = 256  # training and test samples per split: enough to train a little, fast on 2 cores

_runs: dict = {}  # name -> Path of the run folder
_exports: dict = {}  # name -> list of zoo.export.onnx.ExportedFile

# Runs the zoo CLI in a fresh interpreter where `import torch` raises ImportError, the way an app
# that ships only numpy and onnxruntime would.
NO_TORCH = "import sys; sys.modules['torch'] = None; sys.argv[0] = 'zoo'; from zoo.cli import main; main()"


def run_zoo_without_torch(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


# Settings that keep a model's tests quick where its defaults are slow to train or export: vq-vae's
# generator unrolls one PixelCNN pass per code position, so its prior's depth sets the export time.
QUICK_SETTINGS = {"vq-vae": {"prior_layers": 1, "prior_channels": 16}}


def trained_run(name: str, tmp_path_factory) -> Path:
    """A run folder of ``name`` trained for one epoch on SUBSET samples of the small datasets
    conftest writes. They are always there, so data not found is a failure, never a skip."""
    if name not in _runs:
        from zoo.train.loop import train

        out = tmp_path_factory.mktemp(f"run-{name}") / name
        with contextlib.redirect_stderr(io.StringIO()):  # the loop's progress lines
            sets = QUICK_SETTINGS.get(name)
            _runs[name] = train(name, out, epochs=1, subset=SUBSET, device="cpu", seed=0, sets=sets)
    return _runs[name]


def exported(name: str, tmp_path_factory) -> dict:
    """``{"run": run folder, "encoder": path, "decoder": path, "generator": path, "artifacts": [...]}``,
    exported into the run folder with the default opset."""
    run = trained_run(name, tmp_path_factory)
    if name not in _exports:
        from zoo.export.onnx import export_artifacts

        _exports[name] = export_artifacts(run)
    return {"run": run, "artifacts": _exports[name], **{a.part: a.path for a in _exports[name]}}


def hand_made_run(folder: Path, name: str, model, dataset="") -> Path:
    """A run folder written without training: config.json plus weights, as `zoo train` lays them out."""
    from zoo.train.run_folder import write_untrained_run

    return write_untrained_run(folder, name, model, dataset=dataset)


def leftovers(folder: Path) -> list:
    """Files an export may have left behind: artifacts, temporaries, external weight files."""
    return sorted(p.name for p in Path(folder).iterdir() if p.suffix in (".onnx", ".tmp", ".data") or ".onnx" in p.name)
