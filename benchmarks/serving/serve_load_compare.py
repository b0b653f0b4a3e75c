"""`zoo serve` at an earlier commit and now, side by side: serve_load's cells run for each, in
alternating rounds, from the same exported models, and each cell's requests/s reported as the ratio
now / before (above 1: faster now).

The earlier commit is checked out into a temporary git worktree and imported in place of this
checkout (its zoo/, first on PYTHONPATH; a commit from before plugins/, export/ and serve/ moved
under zoo/ gets them linked there, as its pyproject.toml mapped them), run from a folder outside the
checkout so that the current directory does not shadow it; the load client, the models and the
benchmark (benchmarks.serving.serve_load, this checkout's, next on PYTHONPATH) are the same for both
sides.

    python -m benchmarks.serving.serve_load_compare --before d81c0c6      # two rounds, about 8 minutes
    python -m benchmarks.serving.serve_load_compare --before HEAD~3 --rounds 1 --quick --out /tmp/compare

Writes benchmarks/results/serve_load_compare-<machine>-<date>.json and .md.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import machine
from benchmarks.serving.harness import ROOT, make_run

BENCHMARK = "benchmarks.serving.serve_load"
OLD_TOP_LEVEL = ("plugins", "export", "serve")  # beside zoo/ before they moved under it (pyproject's package-dir)


def importable_tree(revision: str, scratch: Path) -> Path:
    """A folder whose zoo package is ``revision``'s, laid out as the installed package is: as it is
    where the revision keeps everything under zoo/, with the old top-level folders linked in where not."""
    tree = scratch / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), revision], check=True)
    package = scratch / "path"
    package.mkdir()
    (package / "zoo").symlink_to(tree / "zoo")
    for folder in OLD_TOP_LEVEL:
        link = tree / "zoo" / folder
        if not link.exists() and (tree / folder).is_dir():
            link.symlink_to(tree / folder)
    return package


def cell_rates(result: dict) -> dict:
    """{(model, tensors, batching, concurrency): requests/s} of every cell a serve_load run measured."""
    rates = {(c["model"], c["tensors"], c["batching"], c["concurrency"]): c["rps"] for c in result["cells"]}
    rates.update({("no-work-generator", c["tensors"], "on", c["concurrency"]): c["rps"] for c in result["no_work"]})
    rates.update({("hello-world route", "-", "-", c["concurrency"]): c["rps"] for c in result["hello"]})
    return rates


def run_side(path: Path | None, runs: list, out: Path, quick: bool, cwd: Path) -> dict:
    """serve_load on ``runs`` with the zoo in ``path`` (None: this checkout's), from ``cwd``, a folder
    outside the checkout: `python -m` puts the current directory first on sys.path, so the checkout's
    root as cwd would put its zoo before ``path``'s. The benchmarks package comes from this checkout,
    after ``path``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([*([str(path)] if path is not None else []), str(ROOT)])
    command = [
        sys.executable,
        "-m",
        BENCHMARK,
        "--runs",
        *map(str, runs),
        "--out",
        str(out),
        *(["--quick"] if quick else []),
    ]
    subprocess.run(command, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    (result,) = out.glob("serve_load-*.json")
    return json.loads(result.read_text())


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# zoo serve now against {result['before']} ({m['cpu']}, {m['cores']} cores, {m['date']})",
        "",
        f"serve_load.py's cells, {result['rounds']} alternating rounds, the same models and load client; "
        "requests/s now / before (above 1: faster now), one ratio per round.",
        "",
        "| model | tensors | batching | concurrency | now / before |",
        "|---|---|---|---:|---|",
    ]
    for row in result["cells"]:
        lines.append(
            f"| {row['model']} | {row['tensors']} | {row['batching']} | {row['concurrency']} | "
            f"{', '.join(f'{r:.2f}' for r in row['ratios'])} |"
        )
    s = result["summary"]
    lines += [
        "",
        f"Median ratio {s['median']:.2f} over {s['count']} cell-rounds (lowest {s['min']:.2f}, highest "
        f"{s['max']:.2f}); the hello-world route, whose code is the same on both sides but for the connection "
        f"layer, varied {s['hello_min']:.2f}-{s['hello_max']:.2f}: the machine's own noise.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = machine.arguments(__doc__, quick="serve_load's quick plan")
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        before = importable_tree(args.before, scratch)
        try:
            runs = [make_run(scratch / "vae", "vae"), make_run(scratch / "conv-ae", "conv-ae")]
            sides = {"before": [], "now": []}
            for round_ in range(args.rounds):
                for side, path in (("before", before), ("now", None)):
                    out = scratch / f"{side}-{round_}"
                    sides[side].append(cell_rates(run_side(path, runs, out, args.quick, cwd=scratch)))
                    print(f"round {round_ + 1}: {side} done", file=sys.stderr, flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch / "tree")], check=False
            )
    cells = [
        {
            "model": key[0],
            "tensors": key[1],
            "batching": key[2],
            "concurrency": key[3],
            "ratios": [now[key] / old[key] for old, now in zip(sides["before"], sides["now"])],
        }
        for key in sorted(sides["now"][0], key=str)
        if key in sides["before"][0]
    ]
    every = [r for c in cells for r in c["ratios"]]
    hello = [r for c in cells if c["model"] == "hello-world route" for r in c["ratios"]]
    result = {
        "benchmark": "serve_load_compare",
        "before": args.before,
        "rounds": args.rounds,
        "quick": args.quick,
        "machine": machine.describe(),
        "cells": cells,
        "summary": {
            "median": statistics.median(every),
            "min": min(every),
            "max": max(every),
            "count": len(every),
            "hello_min": min(hello),
            "hello_max": max(hello),
        },
    }
    text = markdown(result)
    machine.publish("serve_load_compare", result, text, args.out)


if __name__ == "__main__":
    main()
