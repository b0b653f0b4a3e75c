"""One training epoch three ways, side by side in one run, on the same model, batch and machine:

- seed: the lecture's loop: torchvision MNIST + DataLoader + ToTensor, batch 100, Adam 1e-3,
  the 784-100-784 linear autoencoder;
- zoo: the shared loop (`zoo.train.loop.train`, pca-ae with latent=100 on mnist, the same settings);
- bare: the same optimizer steps over batches preloaded as float tensors with nothing else: the floor.

Writes the epoch times and the ratios to benchmarks/results/. Run:
    ZOO_DATA_DIR=../shared/datasets python -m benchmarks.training.train_throughput [--epochs 3] [--threads N]
"""

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.machine import describe, publish

BATCH, LR, LATENT = 100, 1e-3, 100


def seed_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, LATENT), nn.Linear(LATENT, 784))


def step(model, optimizer, x):
    loss = nn.functional.mse_loss(model(x), x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def torchvision_root(paths: dict, tmp: Path) -> Path:
    """torchvision's MNIST reads uncompressed files from <root>/MNIST/raw/; lay them out there."""
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in paths.values():
        name = path.name.removesuffix(".gz")
        if path.suffix == ".gz":
            (raw / name).write_bytes(gzip.decompress(path.read_bytes()))
        else:
            shutil.copy(path, raw / name)
    return tmp


def seed_epochs(root: Path, epochs: int, device) -> list[float]:
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms

    data = torchvision.datasets.MNIST(str(root), train=True, transform=transforms.ToTensor(), download=False)
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    model = seed_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, _ in loader:
            step(model, optimizer, x.view(-1, 784).to(device))
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def bare_epochs(train_uint8: torch.Tensor, epochs: int, device) -> list[float]:
    x_all = train_uint8.to(device).float().div(255).view(-1, 784)
    batches = list(x_all.split(BATCH))
    model = seed_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    times = []
    for _ in range(epochs):
        sync(device)
        t0 = time.perf_counter()
        for x in batches:
            step(model, optimizer, x)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def zoo_epochs(tmp: Path, epochs: int, device) -> list[float]:
    from zoo.train.loop import train

    run = train(
        "pca-ae",
        tmp / "run",
        dataset="mnist",
        sets={"latent": LATENT},
        epochs=epochs,
        batch_size=BATCH,
        lr=LR,
        schedule="constant",
        device=str(device),
    )
    from zoo.train.run_folder import read_metrics

    return [record["epoch_seconds"] for record in read_metrics(run)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop; the median is reported")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from zoo.data import load_idx_dataset, locate

    paths = locate("mnist", download=False)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = torchvision_root(paths, tmp / "tv")
        # Interleave the loops so that any drift in machine load hits all three alike.
        times = {"seed": [], "zoo": [], "bare": []}
        train_uint8 = load_idx_dataset("mnist").train
        for rep in range(args.epochs):
            print(f"round {rep + 1}/{args.epochs}", file=sys.stderr)
            times["seed"] += seed_epochs(root, 1, device)
            times["zoo"] += zoo_epochs(tmp / f"zoo{rep}", 1, device)
            times["bare"] += bare_epochs(train_uint8, 1, device)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "train_throughput",
        "machine": describe(args.threads),
        "device": str(device),
        "settings": {"batch": BATCH, "lr": LR, "model": f"784-{LATENT}-784 linear AE", "epochs": args.epochs},
        "epoch_seconds": times,
        "median_epoch_seconds": median,
        "samples_per_second": {k: 60_000 / v for k, v in median.items()},
        "speedup_zoo_over_seed": median["seed"] / median["zoo"],
        "zoo_over_bare": median["zoo"] / median["bare"],
    }
    m = result["machine"]
    markdown = "\n".join(
        [
            f"# Training throughput, one MNIST epoch ({device})",
            "",
            f"{m['gpu'] or m['cpu']}, {m['cores']} cores, torch {m['versions']['torch']}, "
            f"{args.threads} torch threads, {m['date']}. 784-100-784 AE, batch {BATCH}, Adam {LR}; "
            f"median of {args.epochs} epochs each.",
            "",
            "| loop | s / epoch | samples / s | vs seed loop | vs bare floor |",
            "|---|---:|---:|---:|---:|",
            *[
                f"| {k} | {median[k]:.3f} | {60_000 / median[k]:,.0f} | {median['seed'] / median[k]:.2f}x | "
                f"{median[k] / median['bare']:.2f}x |"
                for k in ("seed", "zoo", "bare")
            ],
            "",
        ]
    )
    publish("train_throughput", result, markdown)


if __name__ == "__main__":
    main()
