"""README.md's links into the repository (the docs pages, the benchmark results its numbers come from)
lead to files that exist; mkdocs checks the site's own links, but the README is read on its own."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def local_links(text: str) -> list:
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link) and not link.startswith("#")]


def test_every_local_link_of_the_readme_exists():
    links = local_links((ROOT / "README.md").read_text())
    assert any(link.startswith("benchmarks/results/") for link in links), "the README links no results file"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_scan_finds_local_links_only():
    text = "[a](docs/x.md#part) [b](https://example.org) [c](#here) ![d](benchmarks/results/y.png)"
    assert local_links(text) == ["docs/x.md#part", "benchmarks/results/y.png"]
