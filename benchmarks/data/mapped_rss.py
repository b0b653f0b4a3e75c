"""Peak memory of training from a split larger than the memory budget, beside the split's size: the
same one-epoch deep-ae run on a uint8 .npy of 3x32x32 images, once with the split copied into RAM
(the default budget) and once memory-mapped (a budget below the split's size). Each run is its own
process; a sampler thread records its peak anonymous memory (what the process allocated) and its
peak file-backed resident memory (pages of the mapped file in the page cache, which the kernel can
drop at any time), beside the kernel's peak RSS (VmHWM, both together).

Run:
    python -m benchmarks.data.mapped_rss [--quick] [--megabytes 400] [--out DIR]
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.machine import arguments, describe, publish

BUDGET = 64 << 20  # the mapped run's memory_budget, bytes (a quarter of the split if that is less)

CHILD = r"""
import json, sys, threading, time
from pathlib import Path


def status():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


peak = {"RssAnon": 0, "RssFile": 0}
done = False


def sample():
    while not done:
        now = status()
        for key in peak:
            peak[key] = max(peak[key], now[key])
        time.sleep(0.02)


threading.Thread(target=sample, daemon=True).start()
import torch
torch.set_num_threads(2)
from zoo.data.by_path import make_request
from zoo.train.run_folder import read_metrics
from zoo.train.loop import train

run = train("deep-ae", Path(sys.argv[2]), data=make_request(sys.argv[1]), epochs=1, batch_size=128,
            memory_budget=int(sys.argv[3]), device="cpu")
done = True
time.sleep(0.05)
print(json.dumps({"peak_anon_bytes": peak["RssAnon"], "peak_file_bytes": peak["RssFile"],
                  "vm_hwm_bytes": status()["VmHWM"], "epoch_seconds": read_metrics(run)[0]["epoch_seconds"]}))
"""


def run_child(npy: Path, out: Path, budget: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(npy), str(out), str(budget)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = arguments(__doc__, quick="a 40 MB split")
    parser.add_argument("--megabytes", type=int, default=400, help="size of the split file")
    args = parser.parse_args()
    megabytes = 40 if args.quick else args.megabytes
    count = megabytes * 10**6 // (3 * 32 * 32)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "images.npy"
        images = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=(count, 3, 32, 32))
        rng = np.random.default_rng(0)
        for start in range(0, count, 10_000):
            images[start : start + 10_000] = rng.integers(0, 256, images[start : start + 10_000].shape, np.uint8)
        images.flush()
        del images
        print(f"{count:,} images, {npy.stat().st_size / 1e6:,.0f} MB", file=sys.stderr)
        split_bytes = npy.stat().st_size
        budget = min(BUDGET, split_bytes // 4)
        rows = {
            "in RAM": run_child(npy, Path(tmp) / "ram", 0),
            "memory-mapped": run_child(npy, Path(tmp) / "mapped", budget),
        }
    result = {
        "benchmark": "mapped_rss",
        "machine": describe(2),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "images": count,
        "split_file_bytes": split_bytes,
        "mapped_budget_bytes": budget,
        "runs": rows,
    }
    publish("mapped_rss", result, markdown(result), args.out)


def markdown(result) -> str:
    m, mb = result["machine"], lambda b: f"{b / 2**20:,.0f}"
    return "\n".join(
        [
            "# Peak memory training from a memory-mapped split",
            "",
            f"{m['cpu']}, {m['cores']} cores, torch {m['versions']['torch']}, 2 torch threads, {m['date']}. deep-ae, "
            f"one epoch, batch 128, on {result['images']:,} uint8 3x32x32 images in one .npy "
            f"({mb(result['split_file_bytes'])} MiB; the whole file is the split, less the seeded tenth that is the "
            f"test split). The mapped run's budget: {mb(result['mapped_budget_bytes'])} MiB. Load average "
            f"{result['load_average_before'][0]:.2f} before, {result['load_average_after'][0]:.2f} after.",
            "",
            "| split | peak anonymous MiB | peak file-backed MiB | peak RSS (VmHWM) MiB | s / epoch |",
            "|---|---:|---:|---:|---:|",
            *[
                f"| {name} | {mb(r['peak_anon_bytes'])} | {mb(r['peak_file_bytes'])} | {mb(r['vm_hwm_bytes'])} | "
                f"{r['epoch_seconds']:.2f} |"
                for name, r in result["runs"].items()
            ],
            "",
        ]
    )


if __name__ == "__main__":
    main()
