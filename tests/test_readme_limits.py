"""Each row of the limits table (docs/serving-limits.md) names the tests that hold `zoo serve` to it:
every named test must exist, so that a claim cannot outlive its test, and every row must name one."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def limits_rows() -> list:
    """The rows of the limits table: from its header to the first line that is not a table row."""
    text = (ROOT / "docs" / "serving-limits.md").read_text()
    table = text[text.index("| what | limit (flag, default) |") :].split("\n\n", 1)[0]
    return [line for line in table.splitlines()[2:] if line.startswith("| ")]


def functions_in(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_limit_names_tests_that_exist():
    rows = limits_rows()
    assert len(rows) >= 12
    for row in rows:
        named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", row.rsplit("|", 2)[-2])
        assert named, f"this limit names no test: {row[:80]}"
        for file, function in named:
            assert function in functions_in(ROOT / "tests" / file), f"{file}::{function} does not exist"
