"""What serve_peers reports: the targets (zoo serve against Triton's best setting, KServe and
MLServer), the Markdown tables and the plot."""

from pathlib import Path

from benchmarks.serving.peers.peer_processes import HEALTH
from benchmarks.serving.peers.peer_servers import (
    CELL_TITLES,
    CELLS,
    LABELS,
    PYTHON_SERVER_TARGET,
    TRITON_TARGET,
)

# -- targets, Markdown and the plot ----------------------------------------------------------------


def good_rps(entry, cell: str):
    """Successful requests/s of one server's cell, or None where it was not measured."""
    if not entry or entry.get("status") != "ok":
        return None
    return entry["cells"].get(cell, {}).get("good_rps")


def why_missing(entry, cell: str) -> str:
    if not entry:
        return "not measured"
    if entry.get("status") != "ok":
        return f"{entry['label']} failed"
    found = entry["cells"].get(cell, {})
    return found.get("skipped") or ("client failed" if "failed" in found else "not measured")


def ratio(target: str, cell: str, against: str | None, ours, theirs, threshold: float, missing: str) -> dict:
    if ours is None or not theirs:
        return {
            "target": target,
            "cell": cell,
            "against": against,
            "value": None,
            "threshold": threshold,
            "met": None,
            "why": missing,
        }
    value = ours / theirs
    return {
        "target": target,
        "cell": cell,
        "against": against,
        "value": value,
        "threshold": threshold,
        "met": value >= threshold,
    }


def targets(servers: list) -> list:
    """zoo serve against Triton's best setting in every cell, and against KServe and MLServer at c=64."""
    by = {s["server"]: s for s in servers}
    if "zoo" not in by:
        return []
    zoo, found = by["zoo"], []

    def against(cell, key, theirs, threshold, title):
        ours = good_rps(zoo, cell)
        missing = why_missing(zoo, cell) if ours is None else why_missing(by[key], cell)
        found.append(
            ratio(
                f"{CELL_TITLES[cell]}: zoo serve / {title} >= {threshold:g}x",
                cell,
                key,
                ours,
                theirs,
                threshold,
                missing,
            )
        )

    tritons = [k for k in ("triton-ort-0", "triton-ort-200") if k in by]
    for cell, _, _ in CELLS if tritons else ():
        best = max(((good_rps(by[k], cell), k) for k in tritons if good_rps(by[k], cell)), default=(None, tritons[0]))
        against(cell, best[1], best[0], TRITON_TARGET, "Triton ORT's best setting")
    for key in ("kserve", "mlserver"):
        for cell in ("json_c64", "binary_c64") if key in by else ():
            against(cell, key, good_rps(by[key], cell), PYTHON_SERVER_TARGET, LABELS[key])
    return found


def cell_text(entry, cell: str) -> str:
    rps = good_rps(entry, cell)
    if rps is None:
        return why_missing(entry, cell) if entry.get("status") == "ok" else "-"
    errors = entry["cells"][cell]["errors"]
    return f"{rps:,.0f}" + (f" ({errors} errors)" if errors else "")


def target_text(target: dict) -> str:
    if target["value"] is None:
        return f"| {target['target']} | {target['why']} | - |"
    return (
        f"| {target['target']} | {target['value']:.2f}x (against {target['against']}) | "
        f"{'yes' if target['met'] else 'no'} |"
    )


def markdown_rows(peers: dict) -> list:
    """The peers' table, their targets and their versions and settings: for this script's Markdown
    and for serve_load's under `--peers`."""
    lines = ["| server | " + " | ".join(CELL_TITLES[c] for c, _, _ in CELLS) + " |", "|---|" + "---:|" * len(CELLS)]
    for entry in peers["servers"]:
        lines.append(f"| {entry['label']} | " + " | ".join(cell_text(entry, c) for c, _, _ in CELLS) + " |")
    lines += [
        "",
        f"Requests/s (successful ones), batch-1 requests to the VAE generator; the health route is `GET {HEALTH}`.",
        "",
    ]
    for entry in peers["servers"]:
        if entry.get("status") != "ok":
            lines.append(f"- {entry['label']}: not measured: {' '.join(entry['reason'].split())}")
        elif entry.get("note"):
            lines.append(f"- {entry['label']}: {entry['note']}.")
    if peers["targets"]:
        lines += ["", "| target | measured | met |", "|---|---|---|", *map(target_text, peers["targets"])]
    lines += ["", "| server | versions | settings |", "|---|---|---|"]
    for entry in peers["servers"]:
        versions = ", ".join(f"{k} {v}" for k, v in entry.get("version", {}).items())
        settings = ", ".join(f"{k}: {v}" for k, v in entry.get("settings", {}).items())
        lines.append(f"| {entry['label']} | {versions or '-'} | {settings or '-'} |")
    return lines


def markdown(result: dict, image: str = "") -> str:
    m = result["machine"]
    pinning = (
        "each server pinned to one core, the load client to the other"
        if result["pinned"]
        else "not pinned (fewer than 2 cores)"
    )
    quick = " (quick run: too few requests to read much into)" if result["quick"] else ""
    lines = [
        f"# zoo serve beside its peers{quick}",
        "",
        f"{m['cpu']}, {m['cores']} cores, {pinning}; Python {m['versions']['python']}, {m['date']}. "
        "The same seeded VAE generator file in every server, onnxruntime at one intra-op thread everywhere; "
        "serve_load's closed-loop client on keep-alive connections over loopback, "
        f"{result['plan']['requests']} requests or {result['plan']['seconds']:g} s per cell.",
        "",
        *markdown_rows(result),
        "",
        f"![requests/s per cell and server]({image})",
        "",
        "## Every cell",
        "",
        "| server | cell | req/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for entry in result["servers"]:
        for cell, found in entry.get("cells", {}).items():
            if found.get("requests"):
                latency = " | ".join(f"{found[p]:.2f}" for p in ("p50_ms", "p90_ms", "p99_ms"))
                lines.append(
                    f"| {entry['label']} | {CELL_TITLES[cell]} | {found['rps']:,.0f} | {latency} | {found['errors']} |"
                )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    servers = [s for s in result["servers"] if s.get("status") == "ok"]
    width = 0.8 / max(1, len(servers))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for i, entry in enumerate(servers):
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(CELLS))]
        ys = [good_rps(entry, cell) or 0 for cell, _, _ in CELLS]
        ax.bar(xs, ys, width, label=entry["label"])
    ax.set_xticks(range(len(CELLS)), [CELL_TITLES[c] for c, _, _ in CELLS])
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("requests / s (log scale; no bar: not measured)")
    ax.set_title("batch-1 requests to the VAE generator, one server core")
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
