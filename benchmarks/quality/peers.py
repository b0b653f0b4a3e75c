"""One-class MNIST and Fashion-MNIST, side by side with the library a user would pick instead:
PyOD's AutoEncoder and VAE with their defaults (in their own virtual environment, .peers/pyod,
installed from PyPI and seeing this checkout's torch) against the zoo's default scorer (deep-ae,
its defaults: 784-64-32, each pixel standardized) and deep-ae with its defaults before they changed
(784-256-64-16-4 on raw pixels), on the same images. Per class: train on that class's training images,
score the whole test split, AUROC with the class as normal; wall time of training per class.

    python3 -m venv .peers/pyod
    echo "$PWD/.venv/lib/python3.11/site-packages" > .peers/pyod/lib/python3.11/site-packages/torch.pth
    .peers/pyod/bin/pip install pyod
    ZOO_DATA_DIR=/work/shared/datasets python -m benchmarks.quality.peers [--classes 0 1 ...] [--datasets mnist]
"""

import contextlib
import io
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import arguments, describe, publish
from zoo.anomaly.metrics import auroc
from zoo.anomaly.scores import score_split
from zoo.core.registry import get_dataset
from zoo.data import load
from zoo.train.loop import train
from zoo.train.run_folder import load_run

PEERS = Path(__file__).resolve().parents[2] / ".peers"
ZOO_SETTINGS = {
    "zoo deep-ae (default scorer)": {},
    "zoo deep-ae, its earlier defaults (256-64-16-4, raw pixels)": {
        "hidden": "256,64,16",
        "latent": "4",
        "normalize": "none",
    },
}


def zoo_case(name: str, label: int, sets: dict, work: Path, test, normal) -> dict:
    out = work / f"zoo-{name}-{label}-{len(os.listdir(work))}"
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        train("deep-ae", out, dataset=name, labels=[str(label)], sets=sets, seed=0, device="cpu")
    seconds = time.perf_counter() - start
    scores = score_split(load_run(out).model, test)
    return {"auroc": auroc(scores, ~normal), "seconds": seconds}


def pyod_cases(work: Path, threads: int, models) -> dict:
    python = PEERS / "pyod" / "bin" / "python"
    script = Path(__file__).with_name("peers_pyod.py")
    subprocess.run([str(python), str(script), str(work), str(threads), ",".join(models)], check=True)
    return json.loads((work / "pyod.json").read_text())


def run(datasets, classes, pyod_models) -> dict:
    result = {"machine": describe(), "load_average_start": os.getloadavg(), "datasets": {}, "classes": classes}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tests = {}
        for name in datasets:
            splits = load(get_dataset(name))
            train_x, train_y = np.asarray(splits.train), np.asarray(splits.train_labels)
            tests[name] = (torch.as_tensor(np.asarray(splits.test)), np.asarray(splits.test_labels))
            for label in classes:
                np.savez(
                    work / f"{name}-{label}.npz", x_train=train_x[train_y == label], x_test=np.asarray(splits.test)
                )
        pyod = pyod_cases(work, torch.get_num_threads(), pyod_models)
        result["versions"] = {"pyod": pyod["pyod"], "torch": pyod["torch"]}
        for name in datasets:
            test, labels = tests[name]
            rows = {}
            for label in classes:
                normal = labels == label
                for entry in pyod["runs"]:
                    if entry["case"] == f"{name}-{label}":
                        rows.setdefault(f"PyOD {entry['model']} (defaults)", {})[label] = {
                            "auroc": auroc(np.asarray(entry["scores"]), ~normal),
                            "seconds": entry["seconds"],
                        }
                for title, sets in ZOO_SETTINGS.items():
                    rows.setdefault(title, {})[label] = zoo_case(name, label, sets, work, test, normal)
                    print(f"{name} {label} {title}: {rows[title][label]}", flush=True)
            result["datasets"][name] = rows
    result["load_average_end"] = os.getloadavg()
    return result


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# One-class AUROC, the zoo beside PyOD ({m.get('cpu', '')}, {m.get('cores', '')} cores, {m.get('date', '')})",
        "",
        f"PyOD {result['versions']['pyod']}, torch {result['versions']['torch']}; classes {result['classes']}; "
        f"load average {result['load_average_start'][0]:.1f} at the start, {result['load_average_end'][0]:.1f} at the "
        "end (the machine is shared: times are wall times under that load).",
        "",
    ]
    for name, rows in result["datasets"].items():
        lines += [
            f"## {name}",
            "",
            "| model | mean AUROC | " + " | ".join(map(str, result["classes"])) + " | training s per class |",
            "|---|---:|" + "---:|" * len(result["classes"]) + "---:|",
        ]
        for title, per in rows.items():
            values = [per[c]["auroc"] for c in result["classes"]]
            seconds = np.mean([per[c]["seconds"] for c in result["classes"]])
            lines.append(
                f"| {title} | **{100 * np.mean(values):.1f}** | "
                + " | ".join(f"{100 * v:.1f}" for v in values)
                + f" | {seconds:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main():
    parser = arguments(__doc__)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--pyod", nargs="+", default=["AutoEncoder", "VAE"], help="PyOD's models to run")
    args = parser.parse_args()
    result = run(args.datasets, args.classes, args.pyod)
    publish("one_class_peers", result, markdown(result), args.out)


if __name__ == "__main__":
    main()
