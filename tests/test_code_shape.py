"""No function in the package is longer than a reader can hold at once: 80 lines, counted from the
``def`` line to the last line of the body (``end_lineno - lineno + 1`` of the ast node, so the
docstring counts and decorators above the ``def`` do not). Pure ast parsing: no module is imported."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("zoo",)
MAX_LINES = 80


def long_functions(path: Path, limit: int = MAX_LINES) -> list:
    """(name, lines) of every function and method in the file, nested ones included, over ``limit``."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_is_longer_than_80_lines():
    paths = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))
    assert paths, f"found no .py files under {', '.join(FOLDERS)} in {ROOT}"
    too_long = [
        f"{path.relative_to(ROOT)}:{name}:{lines} lines" for path in paths for name, lines in long_functions(path)
    ]
    assert not too_long, f"functions over {MAX_LINES} lines (split them): " + "; ".join(too_long)


def test_the_scan_counts_functions_methods_and_nested_ones(tmp_path):
    def body(lines: int, indent: str) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(lines))

    sample = tmp_path / "sample.py"
    sample.write_text(
        "def fits():\n"
        + body(79, "    ")  # 80 lines
        + "async def too_long():\n"
        + body(80, "    ")  # 81
        + "class C:\n    @staticmethod\n    def method():\n"
        + body(79, "        ")  # 80: the decorator is not counted
        + "    def outer():\n        def nested():\n"
        + body(80, "            ")  # nested 81, outer 82
    )
    assert sorted(long_functions(sample)) == [("nested", 81), ("outer", 82), ("too_long", 81)]
