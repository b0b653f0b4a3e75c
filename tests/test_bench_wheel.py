"""`zoo bench` from a wheel install (no checkout beside it) finds everything inside the package: it
names the machine as a checkout does, puts results under ./benchmark-results, and starts its
workers from the installed modules.

The wheel is built from a copy of the sources (so the checkout gets no build/ folder) and installed
into a throwaway folder put first on PYTHONPATH; the whole test takes a few seconds.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.export.bench import machine

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("zoo", "pyproject.toml", "README.md")

PROBE = """
import json, os
from zoo.export.bench import machine
from zoo.export.bench.worker_client import WorkerProcess

with WorkerProcess("onnxruntime", 1, os.getcwd()) as ort_worker:
    modules = ort_worker("modules")["modules"]
print(json.dumps({"machine_file": machine.__file__, "slug": machine.slug(machine.describe()),
                  "results": str(machine.default_results_folder()), "checkout": str(machine.checkout_root()),
                  "worker_modules": modules}))
"""


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
        elif path.is_file():
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]

    def run_pip(*args):
        proc = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]

    run_pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src))
    (wheel,) = (tmp / "dist").glob("*.whl")
    run_pip("install", "--no-deps", "--no-compile", "--target", str(tmp / "site"), str(wheel))
    return tmp / "site"


def test_a_wheel_install_names_the_machine_as_a_checkout_does(wheel_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(wheel_site)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(found["machine_file"]).is_relative_to(wheel_site)  # the installed copy, not the checkout
    assert found["slug"] == machine.slug(machine.describe())  # e.g. "amd-epyc", never the bare "x86-64"
    assert found["checkout"] == "None"
    assert Path(found["results"]) == tmp_path / machine.WHEEL_RESULTS
    assert found["worker_modules"] and not any(m.split(".")[0] == "torch" for m in found["worker_modules"])


def test_results_go_to_the_checkout_only_from_a_checkout(tmp_path):
    assert machine.default_results_folder() == ROOT / "benchmarks" / "results"  # this editable install
    installed = tmp_path / "site-packages" / "zoo" / "export" / "bench" / "machine.py"
    installed.parent.mkdir(parents=True)
    assert machine.checkout_root(installed) is None
    assert machine.default_results_folder(installed) == Path.cwd() / machine.WHEEL_RESULTS


def test_benchmark_scripts_still_find_their_helpers():
    from benchmarks import machine as scripts_machine

    assert scripts_machine.RESULTS == ROOT / "benchmarks" / "results"
    assert scripts_machine.describe is machine.describe and scripts_machine.slug is machine.slug
    assert callable(scripts_machine.write_results)
