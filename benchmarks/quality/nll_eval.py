"""The cost of `zoo eval --nll` against its FLOP floor, in one process on one machine:

- the floor: the FLOPs of the evaluation (torch.utils.flop_counter on one chunk, scaled to every
  (image, sample) pair) divided by the fp32 matmul ceiling, a 2048 x 2048 torch.matmul timed as
  `zoo bench` times it (the fastest of several calls, at the same thread count);
- the measured seconds of the estimate itself (zoo.evaluate.likelihood.estimate_nll, the code `zoo eval --nll`
  runs), on the binarized MNIST test split.

A ratio near 1 means the evaluation runs at the machine's matmul speed. Run:
    ZOO_DATA_DIR=../shared/datasets python -m benchmarks.quality.nll_eval [--run RUN | --model vae]
        [--k 5000] [--images 10000] [--threads N] [--device cpu|cuda]
Without --run an untrained model of --model is timed: the work does not depend on the weights.
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.machine import describe, publish

CEILING_N, CEILING_CALLS = 2048, 5


def matmul_ceiling_gflops(device) -> float:
    a = torch.randn(CEILING_N, CEILING_N, device=device)
    b = torch.randn(CEILING_N, CEILING_N, device=device)
    best = float("inf")
    for call in range(CEILING_CALLS + 1):
        sync(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        if call:  # the first call warms up
            best = min(best, time.perf_counter() - t0)
    return 2 * CEILING_N**3 / best / 1e9


def flops_per_pair(model, x, samples: int) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.log_importance_weights(x, samples)
    return counter.get_total_flops() / (len(x) * samples)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_model(args, device):
    import zoo
    from zoo.train.run_folder import load_run

    if args.run:
        run = load_run(args.run, device=device)
        return run.model, run.config.model, f"run {args.run}"
    torch.manual_seed(0)
    return (
        zoo.create_model(args.model).to(device).eval(),
        args.model,
        "untrained (the work does not depend on the weights)",
    )


def report_markdown(result: dict, reports: list) -> str:
    """The results page: the fastest evaluation against the FLOP floor, and every repeat."""
    m, s = result["machine"], result["settings"]
    runs = ", ".join(f"{r['seconds']:.2f}" for r in reports)
    peaks = ", ".join(f"{c:.0f}" for c in result["ceiling_gflops"])
    chunks = ", ".join(f"{r['chunk_images']} x {r['chunk_samples']}" for r in reports)
    return "\n".join(
        [
            f"# `zoo eval --nll` against its FLOP floor ({result['model']}, {result['device']})",
            "",
            f"{m['gpu'] or m['cpu']}, {m['cores']} cores, torch {m['versions']['torch']}, {s['threads']} torch "
            f"threads, {m['date']}. k = {s['k']}, the first {s['images']:,} binarized MNIST test images; "
            f"weights: {result['weights']}.",
            "",
            "| FLOPs / pair | total GFLOP | matmul ceiling GFLOP/s (best) | floor s | measured s (fastest) | "
            "achieved GFLOP/s | measured / floor | NLL (nats) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {result['flops_per_pair']:,.0f} | {result['total_flops'] / 1e9:,.1f} | "
            f"{result['best_ceiling_gflops']:.1f} | {result['floor_seconds']:.2f} | "
            f"{result['seconds']:.2f} | {result['achieved_gflops']:.1f} | {result['ratio_to_floor']:.2f}x | "
            f"{result['nll']:.2f} ± {result['nll_stderr']:.2f} |",
            "",
            f"FLOPs count matrix products and convolutions only (torch.utils.flop_counter). The evaluation ran "
            f"{s['repeats']} times, each followed by a ceiling measurement; the table compares the fastest evaluation "
            f"with the best ceiling (all runs: {runs} s; ceilings {peaks} GFLOP/s). Each run times chunk sizes "
            f"first, within the seconds above, and keeps the fastest (images x draws per call: {chunks}).",
            "",
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a run folder; without it an untrained --model is timed")
    parser.add_argument("--model", default="vae")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per image")
    parser.add_argument("--images", type=int, default=10_000, help="first N test images")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="evaluations, interleaved with ceiling measurements")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from zoo.core.registry import get_dataset
    from zoo.data import as_float
    from zoo.data.loading import load_splits
    from zoo.evaluate.likelihood import estimate_nll, memory_budget, plan_chunks
    from zoo.train.devices import flush_denormals
    from zoo.train.run_folder import TEST_BINARIZATION_SEED

    flush_denormals()  # as `zoo eval` does
    model, name, source = load_model(args, device)
    test = load_splits(get_dataset("mnist"), None, 0, device, binarize_test_seed=TEST_BINARIZATION_SEED).test
    test = test[: args.images]
    ceiling = matmul_ceiling_gflops(device)
    # FLOPs per pair do not depend on the chunk: count them on the largest the budget allows.
    chunking = plan_chunks(model, as_float(test[:1]), args.k, memory_budget(device))
    per_pair = flops_per_pair(model, as_float(test[: chunking.images]), chunking.samples)
    # On a shared machine the other load comes and goes: interleave the evaluation with ceiling
    # measurements and compare the fastest of each.
    reports, ceilings = [], [ceiling]
    for _ in range(args.repeats):
        reports.append(estimate_nll(model, test, args.k))
        ceilings.append(matmul_ceiling_gflops(device))
    report = min(reports, key=lambda r: r["seconds"])
    total_flops = per_pair * len(test) * args.k
    best_ceiling = max(ceilings)
    floor_seconds = total_flops / (best_ceiling * 1e9)
    result = {
        "benchmark": "nll_eval",
        "machine": describe(args.threads),
        "device": str(device),
        "model": name,
        "weights": source,
        "settings": {
            "k": args.k,
            "images": len(test),
            "threads": args.threads,
            "ceiling_n": CEILING_N,
            "repeats": args.repeats,
        },
        "ceiling_gflops": ceilings,
        "best_ceiling_gflops": best_ceiling,
        "eval_seconds": [r["seconds"] for r in reports],
        "flops_per_pair": per_pair,
        "total_flops": total_flops,
        "floor_seconds": floor_seconds,
        "seconds": report["seconds"],  # the fastest repeat
        "achieved_gflops": total_flops / report["seconds"] / 1e9,
        "ratio_to_floor": report["seconds"] / floor_seconds,
        "nll": report["nll"],
        "nll_stderr": report["nll_stderr"],
        "chunk": {"images": report["chunk_images"], "samples": report["chunk_samples"]},
        "chunks_per_repeat": [[r["chunk_images"], r["chunk_samples"]] for r in reports],
        "peak_rss_bytes": report["peak_rss_bytes"],
        "peak_cuda_bytes": report["peak_cuda_bytes"],
    }
    publish("nll_eval", result, report_markdown(result, reports))


if __name__ == "__main__":
    main()
