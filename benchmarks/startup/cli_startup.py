"""How long the `zoo` commands that only read the registry take to answer, wall clock from process
start to exit, median of N runs: the time a user waits for `zoo --help` or `zoo list`.

Several interpreters can be compared side by side in one run (--python LABEL=PATH, each with zoo
installed): the rounds alternate between them, so a slow moment of the machine hits all alike.
`zoo info` runs once untimed first, so the timed runs answer from its cache as a user's second
`zoo info` does.

    python -m benchmarks.startup.cli_startup               # this checkout's interpreter, 5 runs each
    python -m benchmarks.startup.cli_startup --python before=/tmp/old/bin/python --runs 9

Writes benchmarks/results/cli_startup-<machine>-<date>.json and .md.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import machine

COMMANDS = [
    ["--help"],
    ["list"],
    ["info", "vae"],
    ["plugins"],
    ["datasets"],
    ["train", "--help"],
    ["serve", "--help"],
    ["sample", "--help"],
]
TARGET_S = 0.3  # the bound for `zoo list`


# Run from an empty folder: `python -m` puts the working directory first on sys.path, and a zoo/
# folder there (a checkout) would be imported instead of the interpreter's own install.
NEUTRAL = tempfile.mkdtemp(prefix="zoo-startup-cwd-")


def wall_seconds(python: str, args: list, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        [python, "-m", "zoo", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        cwd=NEUTRAL,
    )
    return time.perf_counter() - start


def source_of(python: str) -> str:
    """Where that interpreter's zoo comes from, with the commit when it is a git checkout."""
    folder = subprocess.run(
        [python, "-c", "import os, zoo; print(os.path.dirname(os.path.dirname(zoo.__file__)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=NEUTRAL,
    ).stdout.strip()
    commit = subprocess.run(["git", "-C", folder, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return f"{folder} at {commit.stdout.strip()}{' (modified)' if dirty else ''}" if commit.returncode == 0 else folder


def measure(pythons: dict, runs: int) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": tempfile.mkdtemp(prefix="zoo-startup-")}  # an empty info cache
    for python in pythons.values():
        wall_seconds(python, ["info", "vae"], env)  # fills the cache (and warms the file cache)
    times = {label: {" ".join(c): [] for c in COMMANDS} for label in pythons}
    for _ in range(runs):
        for args in COMMANDS:
            for label, python in pythons.items():
                times[label][" ".join(args)].append(wall_seconds(python, args, env))
    return {
        label: {command: {"median_s": statistics.median(t), "min_s": min(t), "runs": t} for command, t in per.items()}
        for label, per in times.items()
    }


def markdown(result: dict) -> str:
    labels = list(result["seconds"])
    info = result["machine"]
    lines = [
        f"# `zoo` start-up, median wall seconds of {result['runs']} runs",
        "",
        f"{info['cpu']}, {info['cores']} cores; Python {info['versions']['python']}, "
        f"torch {info['versions']['torch']}; {info['date']}. Target for `zoo list`: {TARGET_S} s.",
        "",
        *[f"- {label}: `{result['sources'][label]}`" for label in labels],
        "",
        "| command | " + " | ".join(labels) + " |" + (" ratio |" if len(labels) == 2 else ""),
        "|---|" + "---:|" * (len(labels) + (len(labels) == 2)),
    ]
    for command in result["seconds"][labels[0]]:
        cells = [result["seconds"][label][command]["median_s"] for label in labels]
        ratio = f" {cells[0] / cells[1]:.1f}x |" if len(labels) == 2 else ""
        lines.append(f"| `zoo {command}` | " + " | ".join(f"{c:.3f}" for c in cells) + f" |{ratio}")
    return "\n".join(lines) + "\n"


def main():
    parser = machine.arguments(__doc__)
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="an interpreter with zoo installed (default: this one, labelled 'now')",
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pythons = dict(p.split("=", 1) for p in args.python) or {"now": sys.executable}
    result = {
        "machine": machine.describe(),
        "runs": args.runs,
        "pythons": pythons,
        "sources": {label: source_of(python) for label, python in pythons.items()},
        "seconds": measure(pythons, args.runs),
    }
    machine.publish("cli_startup", result, markdown(result), args.out)


if __name__ == "__main__":
    main()
