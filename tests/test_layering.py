"""Imports run one way: plugins/, export/ and serve/ use zoo/, never the reverse; plugins/ and
export/ do not use each other or serve/; serve/ may use export/ (the repository, the runtime), never
plugins/ (which would bring torch). A folder must not reach a forbidden one by an absolute import, a
relative one, or a module name handed to importlib; every file is checked, subfolders included
(zoo/data/, zoo/plugins/networks/, zoo/export/bench/)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each source folder, the import name setuptools maps it to, and the packages it must not import.
FOLDERS = {
    "zoo": ("zoo", ("zoo.plugins", "zoo.export", "zoo.serve")),
    "plugins": ("zoo.plugins", ("zoo.export", "zoo.serve")),
    "export": ("zoo.export", ("zoo.plugins", "zoo.serve")),
    "serve": ("zoo.serve", ("zoo.plugins",)),
}
WATCHED = ("zoo.plugins", "zoo.export", "zoo.serve")  # string constants naming these are read as imports


def package_of(path: Path) -> str:
    """The import name of the package holding ``path`` (zoo/data/idx.py -> zoo.data)."""
    folder = path.relative_to(ROOT).parts[0]
    return ".".join([FOLDERS[folder][0], *path.relative_to(ROOT / folder).parts[:-1]])


def imported_names(path: Path, package: str) -> list:
    """(line, module) for every import in the file, relative ones resolved from ``package``, and
    every string constant that names a module of WATCHED (as importlib.import_module would)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(WATCHED):
            found.append((node.lineno, node.value))
    return found


def crossing(module: str, forbidden) -> bool:
    return any(module == outside or module.startswith(outside + ".") for outside in forbidden)


SOURCES = sorted(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_folder_imports_only_what_it_may(path):
    forbidden = FOLDERS[path.relative_to(ROOT).parts[0]][1]
    crossings = [f"{path.relative_to(ROOT)}:{line} {module}" for line, module in imported_names(path, package_of(path))
                 if crossing(module, forbidden)]
    assert not crossings, crossings


def test_every_subfolder_is_scanned():
    scanned = {path.parent.relative_to(ROOT).as_posix() for path in SOURCES}
    assert {"zoo", "plugins", "plugins/networks", "export", "export/bench", "serve"} <= scanned


def test_the_scan_sees_each_way_of_importing(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import zoo.serve.http.app\nfrom .export import onnx\nfrom . import plugins\n"
                      "import importlib\nimportlib.import_module('zoo.plugins.vae')\nfrom .config import x\n"
                      "from ..serve import app\n")  # the last: in zoo.data, two dots lead to zoo
    in_core = {module for _, module in imported_names(sample, "zoo") if crossing(module, WATCHED)}
    assert in_core == {"zoo.serve.http.app", "zoo.export", "zoo.export.onnx", "zoo.plugins", "zoo.plugins.vae"}
    in_data = {module for _, module in imported_names(sample, "zoo.data") if crossing(module, WATCHED)}
    assert in_data == {"zoo.serve.http.app", "zoo.plugins.vae", "zoo.serve", "zoo.serve.http.app"}  # .export is zoo.data.export


def test_relative_imports_resolve_from_the_files_package():
    assert package_of(ROOT / "plugins" / "networks" / "vae.py") == "zoo.plugins.networks"
    assert package_of(ROOT / "export" / "bench" / "timing.py") == "zoo.export.bench"
    assert package_of(ROOT / "zoo" / "cli.py") == "zoo"
