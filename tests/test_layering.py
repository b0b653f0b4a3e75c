"""Imports run one way: plugins/, export/ and serve/ use zoo/, never the reverse. The core must not
reach into them by an absolute import, a relative one, or a module name handed to importlib
(they reach the core through the plugin hooks instead)."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "zoo"
OUTSIDE = ("zoo.plugins", "zoo.export", "zoo.serve")


def imported_names(path: Path) -> list:
    """(line, module) for every import in the file, relative ones resolved inside the zoo package,
    and every string constant that names a module of OUTSIDE (as importlib.import_module would)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "zoo" if node.level else ""  # zoo/ is one package: any relative import starts there
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(OUTSIDE):
            found.append((node.lineno, node.value))
    return found


def crossing(module: str) -> bool:
    return any(module == outside or module.startswith(outside + ".") for outside in OUTSIDE)


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_nothing_from_plugins_export_or_serve(path):
    crossings = [f"{path.name}:{line} {module}" for line, module in imported_names(path) if crossing(module)]
    assert not crossings, crossings


def test_the_scan_sees_each_way_of_importing(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import zoo.serve.app\nfrom .export import onnx\nfrom . import plugins\n"
                      "import importlib\nimportlib.import_module('zoo.plugins.vae')\nfrom .config import x\n")
    assert [module for _, module in imported_names(sample) if crossing(module)] == [
        "zoo.serve.app", "zoo.export", "zoo.export.onnx", "zoo.plugins", "zoo.plugins.vae"]
