"""Helpers shared by the test modules (import with `from helpers import ...`)."""

import os
import subprocess
import sys

import pytest


def dataset_available(name: str) -> bool:
    from zoo.data import candidate_dirs, find_idx_files

    return any(find_idx_files(d, name) for d in candidate_dirs(name))


def needs_dataset(name: str):
    if name == "points3d":
        return
    if not dataset_available(name):
        pytest.skip(f"dataset {name!r} not found: set ZOO_DATA_DIR to a folder holding {name}/ to run this test")


def run_zoo(*args, env=None, cwd=None, check=False):
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True,
                            env=full_env, cwd=cwd, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"zoo {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def assert_one_line_error(result, *fragments):
    """A user error: non-zero exit, a single 'Error:' line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
