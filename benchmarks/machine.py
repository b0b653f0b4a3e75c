"""What every benchmark result records about where it ran, and how every benchmark ends (publish):
the modules in benchmarks/ use the same helpers as `zoo bench`, which keeps them in the installed
package (zoo.export.bench.machine)."""

import argparse
import sys
from pathlib import Path

from zoo.export.bench import machine as _machine
from zoo.export.bench.machine import cpu_model, describe, slug  # noqa: F401  (re-exported)

# This folder's results/, also where zoo is installed from a wheel rather than from this checkout.
RESULTS = Path(__file__).resolve().parent / "results"


def write_results(stem: str, result: dict, markdown: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """<out_dir>/<stem>-<machine>-<date>.json and .md; out_dir defaults to benchmarks/results."""
    return _machine.write_results(stem, result, markdown, out_dir if out_dir is not None else RESULTS)


def publish(
    stem: str, result: dict, markdown: str, out_dir: Path | None = None, *, plot=None, note: str = ""
) -> tuple[Path, ...]:
    """How every benchmark ends: write_results (the JSON and the Markdown), then ``plot(path)`` for the
    .png beside them where the benchmark draws one; the Markdown on stdout, and on stderr where it all
    went, followed by ``note``. The paths written, the JSON's first."""
    json_path, md_path = write_results(stem, result, markdown, out_dir)
    written = [json_path, md_path] + ([plot(md_path.with_suffix(".png"))] if plot is not None else [])
    print(markdown)
    names = [str(json_path), *(path.name for path in written[1:])]
    print(f"wrote {', '.join(names[:-1])} and {names[-1]}" + (f" {note}" if note else ""), file=sys.stderr)
    return tuple(written)


def arguments(doc: str, quick: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark script shares: --out, and --quick when the script has a smoke run
    (``quick`` says what it does). The description is the docstring's first paragraph."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=f"a smoke run: {quick}")
    parser.add_argument("--out", type=Path, help="folder for the results (default: benchmarks/results)")
    return parser
