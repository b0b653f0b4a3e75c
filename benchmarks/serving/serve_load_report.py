"""serve_load's results as the issue's targets, Markdown and a plot."""

import math

from benchmarks.serving.peers.serve_peers_report import markdown_rows as peers_rows
from benchmarks.serving.serve_workers import markdown_rows as workers_rows

SUMMARY_CONCURRENCY = (1, 64)  # the README table's rows; the .md file lists every cell below it
SHARE_OF_HELLO = {"binary": 0.85, "json": 0.5}  # req/s under load, as a share of the hello-world route's


def _cell(result, model, tensors, batching, concurrency):
    return next(
        (
            c
            for c in result["cells"]
            if (c["model"], c["tensors"], c["batching"], c["concurrency"]) == (model, tensors, batching, concurrency)
        ),
        None,
    )


def _hello(result, concurrency):
    return next((h for h in result["hello"] if h["concurrency"] == concurrency), None)


def speed_targets(name: str, busy_name: str, tensors: str, one, busy, floor_ms: float, hello1, hello_busy) -> list:
    """The two speed targets of one model and tensor kind, as (target, measured, met): the p50
    overhead at concurrency 1 over in-process onnxruntime (``floor_ms``) against 1.5x the hello-world
    route's p50, and requests/s under load (``busy``) as a share of the hello-world route's."""
    found = []
    if one and hello1:
        overhead = one["p50_ms"] - floor_ms
        found.append(
            (
                f"c=1 {name}: p50 overhead over in-process <= 1.5x hello-world p50",
                f"{overhead:.3f} ms vs {1.5 * hello1['p50_ms']:.3f} ms",
                overhead <= 1.5 * hello1["p50_ms"],
            )
        )
    if busy and hello_busy:
        ratio, share = busy["rps"] / hello_busy["rps"], SHARE_OF_HELLO[tensors]
        found.append(
            (
                f"c={hello_busy['concurrency']} {busy_name}: req/s >= {share:.0%} of hello-world",
                f"{ratio:.0%}",
                ratio >= share,
            )
        )
    return found


def targets(result) -> list:
    """Each target: what it says, the measured value, and whether it was met (None: not measured)."""
    found = []

    def add(target, value, passed):
        found.append({"target": target, "value": value, "passed": passed})

    models = sorted({c["model"] for c in result["cells"]})
    hello1, hello64 = _hello(result, 1), _hello(result, 64)
    for model in models:
        floor = result["inprocess"][model]["p50_ms"]
        for tensors in ("json", "binary"):
            for check in speed_targets(
                f"{model} {tensors}",
                f"{model} {tensors}, batching on",
                tensors,
                _cell(result, model, tensors, "on", 1),
                _cell(result, model, tensors, "on", 64),
                floor,
                hello1,
                hello64,
            ):
                add(*check)
            for concurrency in sorted({c["concurrency"] for c in result["cells"]}):
                on, off = (_cell(result, model, tensors, b, concurrency) for b in ("on", "off"))
                if on and off:
                    ratio = on["rps"] / off["rps"] if off["rps"] else math.inf
                    add(
                        f"c={concurrency} {model} {tensors}: batching on not over 5% slower than off",
                        f"{ratio:.2f}x",
                        ratio >= 0.95,
                    )
    for tensors in ("json", "binary"):
        on, off = (_cell(result, "conv-ae-decoder", tensors, b, 64) for b in ("on", "off"))
        if on and off:
            add(
                f"c=64 conv-ae-decoder {tensors}: batching on faster than off",
                f"{on['rps'] / off['rps']:.2f}x",
                on["rps"] > off["rps"],
            )
    errors = sum(c["errors"] for c in result["cells"]) + sum(h["errors"] for h in result["hello"])
    add("no errors below the queue limit", str(errors), errors == 0)
    over = result["overload"]
    if "p99_ms_503" in over:
        add(
            f"overload at {over['concurrency']} (4x queue {over['queue']}): 503s within 50 ms (p99)",
            f"{over['p99_ms_503']:.1f} ms",
            over["p99_ms_503"] <= 50,
        )
    else:
        add(f"overload at {over['concurrency']}: some requests refused with 503", "none refused", False)
    growth = over["rss_mb_max"] - over["rss_mb_start"]
    add(
        "overload: server resident memory stays flat (growth under 10%)",
        f"{over['rss_mb_start']:.0f} -> {over['rss_mb_max']:.0f} MB",
        growth <= 0.1 * over["rss_mb_start"],
    )
    return found


def _row(label, tensors, batching, cell) -> str:
    mean = cell.get("mean_batch")
    return (
        f"| {label} | {tensors} | {batching} | {cell.get('concurrency', 1)} | {cell['rps']:,.0f} | "
        f"{cell['p50_ms']:.2f} | {cell['p90_ms']:.2f} | {cell['p99_ms']:.2f} | {cell.get('errors', 0)} | "
        f"{'' if mean is None else f'{mean:.1f}'} |"
    )


HEADER = (
    "| route | tensors | batching | concurrency | req/s | p50 ms | p90 ms | p99 ms | errors | mean batch |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def markdown(result) -> str:
    m = result["machine"]
    pinning = "server and client pinned to separate cores" if result["pinned"] else "not pinned (fewer than 2 cores)"
    lines = [
        f"# zoo serve under load{' (quick run: too few requests to read much into)' if result['quick'] else ''}",
        "",
        f"{m['cpu']}, {m['cores']} cores, {pinning}; onnxruntime {m['versions']['onnxruntime']}, "
        f"Python {m['versions']['python']}, {m['date']}. Batch-1 requests, closed loop over loopback; "
        "server with `--threads 1`.",
        "",
        HEADER,
    ]
    for concurrency in (
        SUMMARY_CONCURRENCY if not result["quick"] else sorted({c["concurrency"] for c in result["cells"]})
    ):
        if hello := _hello(result, concurrency):
            lines.append(_row("hello-world route (no model)", "-", "-", hello))
        for cell in [*result.get("no_work", []), *result["cells"]]:
            if cell["concurrency"] == concurrency and cell["batching"] == "on":
                lines.append(_row(cell["model"], cell["tensors"], "on", cell))
    for model, floor in result["inprocess"].items():
        lines.append(_row(f"in-process onnxruntime, {model}", "-", "-", {**floor, "concurrency": 1}))
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {'yes' if t['passed'] else 'no'} |" for t in result["targets"]]
    lines += no_work_reference(result)
    over = result["overload"]
    lines += [
        "",
        "## Overload",
        "",
        f"Queue limit {over['queue']}, {over['concurrency']} concurrent clients, no micro-batching, "
        f"conv-ae decoder: status counts {over['status_counts']}; 503 p50/p99 "
        f"{over.get('p50_ms_503', math.nan):.1f}/{over.get('p99_ms_503', math.nan):.1f} ms; server RSS "
        f"{over['rss_mb_start']:.0f} MB at start, {over['rss_mb_max']:.0f} MB at most, "
        f"{over['rss_mb_end']:.0f} MB at the end.",
    ]
    lines += peers_section(result)
    if not result.get("workers"):
        lines += ["", "## Every cell", "", HEADER]
    if result.get("workers"):
        lines += [
            "",
            "## Worker processes",
            "",
            "`--workers N`, the VAE generator. With 2 workers on 2 cores the server and the load client "
            "share both cores (server cores 'all'), so the client's own work comes out of the server's.",
            "",
            *workers_rows(result["workers"]),
            "",
            "## Every cell",
            "",
            HEADER,
        ]
    lines += [_row(c["model"], c["tensors"], c["batching"], c) for c in result["cells"]]
    lines += [_row(c["model"], c["tensors"], c["batching"], c) for c in result.get("no_work", [])]
    lines += [_row("hello-world route (no model)", "-", "-", h) for h in result["hello"]]
    return "\n".join(lines) + "\n"


def peers_section(result) -> list:
    """Under `--peers`: the same VAE generator through Triton, KServe and MLServer (serve_peers)."""
    if not result.get("peers"):
        return []

    return [
        "",
        "## Beside its peers",
        "",
        "The VAE generator file served by zoo serve and by the systems a user would pick instead, each pinned "
        "to one core with onnxruntime at one intra-op thread, with the same client (serve_peers.py; its own "
        "results file has every cell's latency and a plot).",
        "",
        *peers_rows(result["peers"]),
    ]


def no_work_reference(result) -> list:
    """The speed targets applied to the model that does no work: how much of each target's
    allowance the server's own path (HTTP, parsing, batching, the thread hand-off, an onnxruntime
    call, encoding) leaves to a real model."""
    cells = result.get("no_work", [])
    floor = result["inprocess"].get(cells[0]["model"]) if cells else None
    busy = 64 if _hello(result, 64) else max((h["concurrency"] for h in result["hello"]), default=None)
    hello1, hello_busy = _hello(result, 1), _hello(result, busy)
    if not cells or floor is None or not (hello1 and hello_busy):
        return []
    lines = [
        "",
        "## The same targets for a model that does no work",
        "",
        f"`{cells[0]['model']}` has the VAE generator's interface (20 floats in, 784 out) but its graph only "
        "pads and reshapes: it measures what a request costs the server apart from the model's own work.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for tensors in ("json", "binary"):
        one, many = (
            next((c for c in cells if c["tensors"] == tensors and c["concurrency"] == concurrency), None)
            for concurrency in (1, busy)
        )
        for target, value, met in speed_targets(
            tensors, tensors, tensors, one, many, floor["p50_ms"], hello1, hello_busy
        ):
            lines.append(f"| {target} | {value} | {'yes' if met else 'no'} |")
    return lines


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({c["model"] for c in result["cells"]})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        for tensors in ("binary", "json"):
            for batching, style in (("on", "-"), ("off", ":")):
                cells = sorted(
                    (
                        c
                        for c in result["cells"]
                        if (c["model"], c["tensors"], c["batching"]) == (model, tensors, batching)
                    ),
                    key=lambda c: c["concurrency"],
                )
                ax.plot(
                    [c["concurrency"] for c in cells],
                    [c["rps"] for c in cells],
                    style,
                    marker="o",
                    label=f"{tensors}, batching {batching}",
                )
        hello = sorted(result["hello"], key=lambda h: h["concurrency"])
        ax.plot([h["concurrency"] for h in hello], [h["rps"] for h in hello], "k--", label="hello-world route")
        no_work = sorted(
            (c for c in result.get("no_work", []) if c["tensors"] == "binary"), key=lambda c: c["concurrency"]
        )
        if no_work:
            ax.plot(
                [c["concurrency"] for c in no_work],
                [c["rps"] for c in no_work],
                "-.",
                color="grey",
                label="model that does no work, binary",
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("requests / s")
        ax.set_title(f"{model}, batch-1 requests")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
