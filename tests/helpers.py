"""Helpers shared by the test modules (import with `from helpers import ...`)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def real_data_dir(name: str = "mnist") -> Path:
    """The folder holding the real dataset ``name`` (for tests of a quality number on it). Skips
    only where no data folder was given at all (conftest sets ZOO_REAL_DATA_DIR from ZOO_DATA_DIR or
    ../shared/datasets); where one was, the zoo's lookup must find ``name`` in it, or the test fails:
    a lookup that stopped finding the data must not pass as a skip."""
    from zoo.data import find_idx_files

    base = os.environ.get("ZOO_REAL_DATA_DIR", "")
    if not base:
        pytest.skip(f"no real {name} here: set ZOO_DATA_DIR to a folder holding {name}/ to run this test")
    if not find_idx_files(Path(base) / name):
        pytest.fail(
            f"the data folder {base} was given (ZOO_DATA_DIR or ../shared/datasets), but the zoo finds no "
            f"{name} IDX files in {Path(base) / name}"
        )
    return Path(base) / name


def run_zoo(*args, env=None, cwd=None, check=False):
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )
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


def install_distribution(site, dist_name, module, source, entry_points):
    """Lay out a distribution the way pip installs one: the module and its .dist-info, so that
    PYTHONPATH=site makes its "zoo" entry points real to importlib.metadata. ``source`` is the
    module's text, or {path under site: text} for a package of several files."""
    files = source if isinstance(source, dict) else {f"{module}.py": source}
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(textwrap.dedent(text))
    info = site / f"{dist_name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
