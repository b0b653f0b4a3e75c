"""The app example of docs/export.md ("In your app") runs as written, against real exported
files, in a Python where neither torch nor zoo can be imported."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers, whatever pytest's import mode
from export_helpers import exported  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## In your app"
# Runs the example as __main__ with torch and zoo blocked, as in an app that ships neither.
RUNNER = (
    "import runpy, sys; sys.modules['torch'] = None; sys.modules['zoo'] = None; "
    "script = sys.argv[1]; sys.argv = sys.argv[1:]; runpy.run_path(script, run_name='__main__')"
)


def example_source() -> tuple[str, Path]:
    """The first ```python block after the heading in docs/export.md."""
    doc = ROOT / "docs" / "export.md"
    text = doc.read_text()
    assert HEADING in text, f"{doc} lost its section {HEADING!r}"
    match = re.search(r"^```python\n(.*?)^```", text.split(HEADING, 1)[1], re.S | re.M)
    assert match, f"{doc}: no ```python block after {HEADING!r}"
    return match.group(1), doc


def test_example_imports_only_numpy_onnxruntime_and_the_standard_library():
    source, doc = example_source()
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    third_party = modules - set(sys.stdlib_module_names)
    assert third_party == {"numpy", "onnxruntime"}, f"{doc}: the example imports {sorted(third_party)}"


def test_example_runs_against_an_exported_vae(tmp_path, tmp_path_factory):
    source, doc = example_source()
    files = exported("vae", tmp_path_factory)
    # Only the three .onnx files, as an app would ship them: no run folder, no weights.
    app = tmp_path / "app"
    app.mkdir()
    for part in ("encoder", "decoder", "generator"):
        shutil.copy(files[part], app / f"{part}.onnx")
    script = tmp_path / "example.py"
    script.write_text(source)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), str(app / "generator.onnx")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, f"the example in {doc} fails:\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("vae: 16 samples of shape [1, 28, 28], values in ["), result.stdout
    assert len(lines) == 1 + 28 + 1, result.stdout  # summary, the digit as 28 rows of text, round trip
    assert lines[-1].startswith("encoded to [16, 20] and decoded"), result.stdout
