"""The tree's rules, checked by the tools the test command runs: the import contracts in
pyproject.toml (`lint-imports`) and ruff's lint and format. Each contract is also broken once on a
copy of the package, to show the check can fail."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts, over the ``zoo`` package found in ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    config = ROOT / "pyproject.toml"
    return subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(config), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def contracts_report() -> str:
    proc = lint_imports(ROOT)
    assert "Contracts:" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_import_contracts_hold(contracts_report):
    assert "0 broken" in contracts_report, contracts_report[-3000:]


MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "zoo").rglob("*.py")
)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_only_what_its_layer_may(contracts_report, module):
    """One case per module, so a broken contract names the file that broke it."""
    crossings = [line.strip() for line in contracts_report.splitlines() if line.strip(" -").startswith(f"{module} -> ")]
    assert not crossings, crossings


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("core/errors.py", "import zoo.serve.protocol", "zoo.core is not allowed to import zoo.serve"),
        ("data/splits.py", "from zoo.train import run_folder", "zoo.data is not allowed to import zoo.train"),
        ("export/metadata.py", "import zoo.evaluate.metrics", "zoo.export is not allowed to import zoo.evaluate"),
        ("serve/inference/memory.py", "import torch", "zoo.serve is not allowed to import torch"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, broken):
    shutil.copytree(ROOT / "zoo", tmp_path / "zoo", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "zoo" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0
    assert broken in proc.stdout, proc.stdout[-3000:]


def test_ruff_finds_nothing_to_lint_or_format():
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([str(BIN / "ruff"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout[-3000:]}"
