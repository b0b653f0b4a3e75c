"""Draw docs/layers.png: the folders of zoo/ in their layers (pyproject.toml's import contract) and
the imports between them as the code has them (grimp, the graph lint-imports checks). An arrow goes
from the importing folder to the imported one, labelled with the number of module-to-module
imports; an arrow that points up would be drawn red (lint-imports fails on it first).

    .venv/bin/python scripts/draw_layers.py [OUT.png]
"""

import sys
from collections import Counter
from pathlib import Path

import grimp
import matplotlib
import tomllib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def layers() -> list[list[str]]:
    """The layers contract's rows, top first, each a list of sibling folders."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [[name.strip() for name in row.split("|")] for row in contract["layers"]]


def folder_edges(folders: list[str]) -> Counter:
    """(importer folder, imported folder) -> number of direct module imports between them."""
    graph = grimp.build_graph("zoo", cache_dir=None)
    owner = {}
    for module in graph.modules:
        for folder in folders:
            if module == folder or module.startswith(folder + "."):
                owner[module] = folder
    edges = Counter()
    for module, folder in owner.items():
        for imported in graph.find_modules_directly_imported_by(module):
            target = owner.get(imported)
            if target and target != folder:
                edges[folder, target] += 1
    return edges


def draw(out: Path) -> Path:
    rows = layers()
    folders = [name for row in rows for name in row]
    level = {name: len(rows) - i for i, row in enumerate(rows) for name in row}
    place = {}
    for i, row in enumerate(rows):
        # A lone folder stands left or right of centre in turn, so that long arrows do not overlap.
        shift = 0.0 if len(row) > 1 else (-1.2 if i % 2 else 1.2)
        for j, name in enumerate(row):
            place[name] = ((j + 0.5) / len(row) * 9.0 + shift, (len(rows) - 1 - i) * 1.6)
    fig, ax = plt.subplots(figsize=(9.5, len(rows) * 1.25))
    for (src, dst), count in sorted(folder_edges(folders).items()):
        (x0, y0), (x1, y1) = place[src], place[dst]
        # Leave and arrive on the side facing the other box, spread over the box's width.
        x0, x1 = x0 + max(-0.9, min(0.9, (x1 - x0) * 0.3)), x1 + max(-0.9, min(0.9, (x0 - x1) * 0.3))
        upward = level[dst] >= level[src]
        ax.annotate(
            "",
            xy=(x1, y1 + 0.28),
            xytext=(x0, y0 - 0.28),
            arrowprops={
                "arrowstyle": "->",
                "color": "red" if upward else "#888",
                "lw": 0.6 + 0.15 * count**0.5,
                "connectionstyle": "arc3,rad=0.08",
                "shrinkA": 2,
                "shrinkB": 2,
            },
        )
        ax.text(
            x0 + (x1 - x0) * 0.3,
            y0 - 0.28 + (y1 - y0 + 0.56) * 0.3,
            str(count),
            fontsize=7,
            color="#555",
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"},
        )
    for name, (x, y) in place.items():
        ax.add_patch(
            FancyBboxPatch((x - 1.05, y - 0.27), 2.1, 0.54, boxstyle="round,pad=0.02", fc="#e8f0fe", ec="#3367d6")
        )
        ax.text(
            x,
            y,
            name.replace(".", "/") + ("/" if name != "zoo.cli" else ".py"),
            ha="center",
            va="center",
            fontsize=10,
            family="monospace",
        )
    ax.set_xlim(-0.3, 9.3)
    ax.set_ylim(-0.6, (len(rows) - 1) * 1.6 + 0.6)
    ax.axis("off")
    ax.set_title("zoo/: each folder imports only the folders below it (arrows: imports, with counts)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "layers.png"))
