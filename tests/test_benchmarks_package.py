"""benchmarks/ is a package run as `python -m benchmarks.<group>.<name>`: its modules import each
other by package path and never in a circle, none edits sys.path, the serving harness imports no
benchmark, and every benchmark ends through machine.publish (nothing prints "wrote" to stdout).
The module graph is read from the source (every import, those inside functions too), so the check
needs none of the benchmarks' dependencies; the circle check is also shown failing on a copy."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "benchmarks"


def modules(root: Path) -> dict:
    """{dotted name: path} of every module of the benchmarks package under ``root`` (results/ is data)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "results" in parts:
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict) -> set:
    """The benchmarks modules ``name`` imports, anywhere in it: ``from a.b import c`` imports a.b and,
    where c is a module, a.b.c."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per dot after the first
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def graph(root: Path = ROOT) -> dict:
    known = modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(edges: dict) -> list:
    """One circle of imports as [a, b, ..., a], or [] where there is none."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_benchmarks_import_each_other_in_no_circle():
    edges = graph()
    assert "benchmarks.serving.harness" in edges and "benchmarks.serving.serve_load" in edges
    assert "benchmarks.serving.harness" in edges["benchmarks.serving.serve_load"]  # the graph sees the imports
    assert find_cycle(edges) == []


def test_a_circle_added_on_purpose_is_found(tmp_path):
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "results"))
    harness = tmp_path / PACKAGE / "serving" / "harness.py"
    harness.write_text(
        harness.read_text() + "\n\ndef later():\n    from benchmarks.serving import serve_load  # noqa\n"
    )
    cycle = find_cycle(graph(tmp_path))
    assert cycle[0] == cycle[-1] and {"benchmarks.serving.harness", "benchmarks.serving.serve_load"} <= set(cycle)
    relative = tmp_path / PACKAGE / "serving" / "load_client.py"  # a relative import counts the same
    harness.write_text(harness.read_text().replace("from benchmarks.serving import serve_load", "import json"))
    relative.write_text(relative.read_text() + "\nfrom . import harness  # noqa\n")
    assert find_cycle(graph(tmp_path)) == []  # harness does not import load_client
    harness.write_text(harness.read_text() + "\nfrom .load_client import summary  # noqa\n")
    assert set(find_cycle(graph(tmp_path))) == {"benchmarks.serving.harness", "benchmarks.serving.load_client"}


def test_the_serving_harness_and_the_load_client_import_no_benchmark():
    edges = graph()
    assert edges["benchmarks.serving.harness"] == set()
    assert edges["benchmarks.serving.load_client"] == set()  # a fresh process per measurement: stdlib only


def test_no_benchmark_edits_sys_path():
    for name, path in modules(ROOT).items():
        for node in ast.walk(ast.parse(path.read_text())):
            touched = isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys"
            assert not touched, f"{name} (line {node.lineno}) uses sys.path: import by package path instead"


def test_no_benchmark_prints_wrote_itself():
    """machine.publish says where the results went, on stderr; no module prints its own "wrote"."""
    for name, path in modules(ROOT).items():
        if name == "benchmarks.machine":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print" and node.args:
                text = ast.unparse(node.args[0]).lstrip("f").strip("'\"")
                assert not text.startswith("wrote"), f"{name} (line {node.lineno}) prints {text!r}: use machine.publish"


# The peers a side-by-side benchmark runs in their own virtual environments, never in the zoo's.
PEER_PACKAGES = ("pyod", "pythae")


def runs_in_a_peers_environment(path: Path) -> bool:
    """Whether a module imports a peer's package at its top level: it is run by that peer's own
    interpreter (benchmarks/quality's *_side and peers_pyod), so it cannot be imported here."""
    for node in ast.parse(path.read_text()).body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(name.split(".")[0] in PEER_PACKAGES for name in names):
            return True
    return False


def test_every_benchmark_module_imports_by_its_package_path():
    """Each module, imported as benchmarks.<...> from the repository's root in a fresh interpreter, is
    the file it is named after (a module that runs in a peer's environment is only compiled)."""
    peer_side = {name for name, path in modules(ROOT).items() if runs_in_a_peers_environment(path)}
    assert "benchmarks.quality.pythae_side" in peer_side
    for name in peer_side:
        compile(modules(ROOT)[name].read_text(), name, "exec")
    names = sorted(set(modules(ROOT)) - peer_side)
    probe = (
        "import importlib, json, sys\n"
        "print(json.dumps({n: importlib.import_module(n).__file__ for n in json.loads(sys.argv[1])}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(names)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: Path(file) for name, file in files.items()} == {n: modules(ROOT)[n] for n in names}
