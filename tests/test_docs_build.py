"""The documentation site builds with `mkdocs build --strict`, offline: a broken link between pages or
to a benchmark result, a page missing from the navigation, an API reference that names nothing, or a
command the reference cannot load fails the build. The site must fetch nothing when read."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return out


def test_every_page_of_the_navigation_is_built(site):
    for page in ("getting-started", "training", "serving-limits", "benchmarks", "reference/cli", "reference/api"):
        assert (site / page / "index.html").is_file(), page


def test_the_command_reference_has_the_plugins_commands(site):
    html = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("train", "eval", "export", "sample", "bench", "serve"):
        assert f'id="zoo-{command}"' in html, f"zoo {command} is missing from the command-line reference"
    assert "Sentinel." not in html, "an option's default shows as click's internal 'unset' value"


def test_the_api_reference_documents_the_runtime_and_the_contract(site):
    html = (site / "reference" / "api" / "index.html").read_text()
    for name in (
        "zoo.export.runtime.Generator",
        "zoo.core.specs.ModelSpec",
        "zoo.core.specs.DatasetSpec",
        "zoo.core.hookspecs.register_commands",
        "zoo.list_models",
    ):
        assert f'id="{name}"' in html, f"{name} is missing from the Python API reference"


def test_the_site_fetches_nothing_from_elsewhere(site):
    for page in site.rglob("*.html"):
        html = page.read_text()
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert not remote, f"{page.relative_to(site)} loads {remote}"
