"""The result as Markdown: the references, a latency table at the smallest batch, a throughput table
at the largest, tuning, the comparison with an earlier run, every cell, the artifacts and the notes.
Reads only the result's JSON form, so an old result file can be rendered again."""

from zoo.export.bench.settings import DEFAULT_OPTIONS


def _fmt(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


class _Table:
    """The rows of a result indexed by cell, in reading order (model, part, threads, batch)."""

    def __init__(self, rows: list):
        from zoo.export.parts import PART_NAMES  # imports torch: not at module level (see __init__.py)

        self.by = {(r["model"], r["part"], r["runtime"], r["batch"], r["threads"]): r for r in rows}
        self.cells = sorted(
            {(r["model"], r["part"], r["batch"], r["threads"]) for r in rows},
            key=lambda k: (k[0], PART_NAMES.index(k[1]) if k[1] in PART_NAMES else 9, k[3], k[2]),
        )
        self.small, self.large = min(r["batch"] for r in rows), max(r["batch"] for r in rows)

    def pairs(self, batch=None):
        """(model, part, batch, threads, onnxruntime row, torch row) of every cell, or of one batch."""
        for model, part, b, t in self.cells:
            if batch is None or b == batch:
                onnxruntime_row = self.by[(model, part, "onnxruntime", b, t)]
                yield model, part, b, t, onnxruntime_row, self.by[(model, part, "torch", b, t)]


def _header(result: dict) -> list:
    m, v = result["machine"], result["versions"]
    threads = sorted({r["threads"] for r in result["rows"]})
    return [
        "# onnxruntime against PyTorch eager: inference latency and throughput",
        "",
        f"{m['cpu']}, {m['cores']} cores; torch {v['torch']}, onnxruntime {v['onnxruntime']}, onnx {v['onnx']}; "
        f"{m['date']}; mode: {result['mode']}. Load average {result['load_average']['start']} at the start, "
        f"{result['load_average']['end']} at the end.",
        "",
        "Same inputs, the same thread budget on both sides, separate worker processes taking turns; p50 of "
        "the timed calls after warm-up (rounds disturbed by other load dropped, see the notes). `torch/ORT` > 1 "
        "means onnxruntime is faster. The ceiling is "
        "the faster of the two libraries' large square matmuls at the same thread count.",
        "",
        "| threads | fp32 matmul ceiling, GFLOP/s (torch.matmul / onnxruntime MatMul, "
        f"{result['settings']['ceiling_n']}^2) | floor: onnxruntime Identity p50 (us) | floor: torch Linear p50 (us) |",
        "|---:|---:|---:|---:|",
        *[
            f"| {t} | {result['ceiling_gflops_by_threads'][str(t)]:.1f} "
            f"({result['ceiling_sources'][str(t)]['torch']:.1f} / "
            f"{result['ceiling_sources'][str(t)]['onnxruntime']:.1f}) | "
            f"{result['floors'][str(t)]['onnxruntime_identity_p50_us']:.2f} | "
            f"{result['floors'][str(t)]['torch_linear_p50_us']:.2f} |"
            for t in threads
        ],
    ]


def _latency(result: dict, table: _Table) -> list:
    lines = [
        "",
        f"## Batch {table.small}: latency",
        "",
        "| model | part | threads | ORT p50 us | ORT p99 us | torch p50 us | torch p99 us | torch/ORT | ORT / floor | "
        "ORT - floor us | ORT intra-op threads |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, part, _, t, o, p in table.pairs(table.small):
        floor = result["floors"][str(t)]["onnxruntime_identity_p50_us"]
        lines.append(
            f"| {model} | {part} | {t} | {_fmt(o['p50_us'])} | {_fmt(o['p99_us'])} | {_fmt(p['p50_us'])} | "
            f"{_fmt(p['p99_us'])} | {o['torch_over_onnxruntime']:.2f}x | {o['floor_multiple']:.1f}x | "
            f"{_fmt(o['p50_us'] - floor)} | {o['options']['intra_op_num_threads']} |"
        )
    return lines


def _throughput(table: _Table) -> list:
    lines = [
        "",
        f"## Batch {table.large}: throughput and the matmul ceiling",
        "",
        "| model | part | threads | ORT samples/s | torch samples/s | torch/ORT | ORT GFLOP/s | ORT % ceiling | "
        "torch % ceiling |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, part, _, t, o, p in table.pairs(table.large):
        lines.append(
            f"| {model} | {part} | {t} | {_fmt(o['samples_per_second'])} | {_fmt(p['samples_per_second'])} | "
            f"{o['torch_over_onnxruntime']:.2f}x | {_fmt(o['gflops'])} | {100 * o['ceiling_fraction']:.0f}% | "
            f"{100 * p['ceiling_fraction']:.0f}% |"
        )
    return lines


def _tuning(result: dict, table: _Table) -> list:
    tuning = result.get("tuning", {})
    if not tuning.get("artifacts"):
        return []
    summary, settings = tuning["summary"], result["settings"]
    kept = ", ".join(f"{k} ({n}x)" for k, n in sorted(summary["knob_values_kept"].items())) or "none"
    lines = [
        "",
        "## Tuning onnxruntime's session options",
        "",
        f"Defaults: {', '.join(f'{k}={v}' for k, v in DEFAULT_OPTIONS.items())}, intra-op threads = the "
        f"budget. Step 1, one knob at a time at batches {', '.join(map(str, settings['tune_batches']))}: a value "
        f"is kept when faster by more than {100 * settings['tune_margin']:.0f}% (values kept, where used: {kept}). "
        "Step 2, per batch size, inside the measurement itself: the defaults, the tuned options and (budget "
        "> 1) the tuned options on one intra-op thread all take their turns in every round; the odd rounds "
        "choose (the defaults stay unless beaten by the same margin), the even rounds give the reported "
        "figures and the gain over the defaults, so no choice is judged on the samples that made it.",
        "",
        "| batch | chose defaults | chose tuned | chose tuned, 1 thread | gain over defaults (geomean) | best gain |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for batch, b in sorted(summary["by_batch"].items(), key=lambda kv: int(kv[0])):
        c = b["choices"]
        lines.append(
            f"| {batch} | {c.get('defaults', 0)} | {c.get('tuned', 0)} | {c.get('tuned, 1 thread', 0)} | "
            f"{b['geomean_speedup']:.2f}x | {b['max_speedup']:.2f}x |"
        )
    lines += [
        "",
        f"| artifact | threads | tuned options (changes) | batch {table.small}: choice, gain | "
        f"batch {table.large}: choice, gain |",
        "|---|---:|---|---|---|",
    ]
    for key, entry in sorted(tuning["artifacts"].items()):
        artifact, t = key.rsplit("@", 1)
        changed = ", ".join(f"{k}={v}" for k, v in entry["changed"].items()) or "defaults"
        picks = [entry["per_batch"][str(b)] for b in (table.small, table.large)]
        lines.append(
            f"| {artifact} | {t} | {changed} | "
            + " | ".join(f"{p['choice']}, {p['speedup']:.2f}x" for p in picks)
            + " |"
        )
    return lines


def _reproducibility(result: dict) -> list:
    rep = result.get("reproducibility")
    if not (rep and rep.get("cells")):
        return []
    return [
        "",
        "## Against an earlier run",
        "",
        f"{rep['within_tolerance']} of {rep['cells']} cells' torch/ORT ratios within "
        f"{100 * rep['tolerance']:.0f}% of {rep['against']}; median change "
        f"{100 * rep['median_abs_change']:.1f}%.",
    ]


def _all_cells(table: _Table) -> list:
    lines = [
        "",
        "## All cells",
        "",
        "| model | part | batch | threads | ORT p50 / p90 / p99 us | torch p50 / p90 / p99 us | torch/ORT | "
        "ORT samples/s | torch samples/s | ORT GFLOP/s (% ceiling) | torch GFLOP/s (% ceiling) | max abs diff |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, part, batch, t, o, p in table.pairs():
        lines.append(
            f"| {model} | {part} | {batch} | {t} | {_fmt(o['p50_us'])} / {_fmt(o['p90_us'])} / {_fmt(o['p99_us'])} | "
            f"{_fmt(p['p50_us'])} / {_fmt(p['p90_us'])} / {_fmt(p['p99_us'])} | {o['torch_over_onnxruntime']:.2f}x | "
            f"{_fmt(o['samples_per_second'])} | {_fmt(p['samples_per_second'])} | {_fmt(o['gflops'])} "
            f"({100 * o['ceiling_fraction']:.0f}%) | {_fmt(p['gflops'])} ({100 * p['ceiling_fraction']:.0f}%) | "
            f"{o['max_abs_diff']:.1e} |"
        )
    return lines


def _artifacts(result: dict) -> list:
    lines = [
        "",
        "## Artifacts",
        "",
        "| artifact | file bytes | FLOPs / sample | session creation ms (threads: ms) | ONNX ops |",
        "|---|---:|---:|---|---|",
    ]
    for model, parts in result["artifacts"].items():
        for part, artifact in parts.items():
            setup = ", ".join(f"{t}: {ms:.1f}" for t, ms in artifact["session_create_ms"].items())
            lines.append(
                f"| {model}/{part} | {artifact['file_bytes']:,} | {artifact['flops_per_sample']:,} | "
                f"{setup} | {' '.join(artifact['ops'])} |"
            )
    return lines


def markdown(result: dict) -> str:
    table = _Table(result["rows"])
    lines = [
        *_header(result),
        *_latency(result, table),
        *_throughput(table),
        *_tuning(result, table),
        *_reproducibility(result),
        *_all_cells(table),
        *_artifacts(result),
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in result["notes"]],
        "",
    ]
    return "\n".join(lines)
