"""One training epoch on a folder of 3x32x32 PNGs, side by side in one run, for deep-ae and conv-ae:

- zoo: `zoo.train.loop.train` with --data on the folder, its images already in the decoded cache
  (the epoch time the loop records: batches are index slices of one uint8 array);
- torchvision: ImageFolder + ToTensor + DataLoader (num_workers 0 and 2), decoding every image every
  epoch, feeding the same model, optimizer and batch size;
- bare: the same steps over the images preloaded as one float32 tensor, shuffled by index: the floor.

The loops take turns, round by round, so that drift in the machine's load hits them alike; the median
epoch is reported. Run:
    python -m benchmarks.data.folder_epoch [--quick] [--images 10000] [--rounds 3] [--out DIR]
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.data.image_folders import write_folder
from benchmarks.machine import arguments, describe, publish

BATCH, LR, THREADS = 128, 2e-3, 2
MODELS = {"deep-ae": {}, "conv-ae": {}}  # as they ship


def make_model(name):
    import zoo

    torch.manual_seed(0)
    return zoo.create_model(name, data_shape=(3, 32, 32), **MODELS[name])


def steps(model, batches) -> float:
    """Seconds for one pass of optimizer steps over ``batches`` (float tensors in [0, 1])."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    t0 = time.perf_counter()
    for x in batches:
        loss, _ = model(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


def torchvision_epoch(name, folder: Path, workers: int) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    data = datasets.ImageFolder(str(folder), transform=transforms.ToTensor())
    loader = DataLoader(
        data, batch_size=BATCH, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(0)
    )
    return steps(make_model(name), (x for x, _ in loader))


def bare_epoch(name, images: torch.Tensor) -> float:
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return steps(make_model(name), (images[order[i : i + BATCH]] for i in range(0, len(images), BATCH)))


def zoo_epoch(name, folder: Path, out: Path) -> float:
    from zoo.data.by_path import make_request
    from zoo.train.loop import train
    from zoo.train.run_folder import read_metrics

    # score_holdout=0: train on every training image, as the other loops do (no anomaly threshold).
    run = train(
        name,
        out,
        data=make_request(folder, test_fraction=0.01),
        sets={"score_holdout": 0.0, **MODELS[name]},
        epochs=1,
        batch_size=BATCH,
        lr=LR,
        schedule="constant",
        device="cpu",
    )
    return read_metrics(run)[0]["epoch_seconds"]


def main():
    parser = arguments(__doc__, quick="2,000 images, one round")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images, rounds = (2_000, 1) if args.quick else (args.images, args.rounds)
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        folder = write_folder(Path(tmp) / "png32", images, 32, 32)
        times = {name: {loop: [] for loop in ("zoo", "torchvision-0", "torchvision-2", "bare")} for name in MODELS}
        decoded = run_rounds(folder, Path(tmp), rounds, times)
    median = {name: {loop: statistics.median(t) for loop, t in loops.items()} for name, loops in times.items()}
    fastest = {name: {loop: min(t) for loop, t in loops.items()} for name, loops in times.items()}
    result = {
        "benchmark": "folder_epoch",
        "machine": describe(THREADS),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "settings": {
            "images": images,
            "batch": BATCH,
            "lr": LR,
            "rounds": rounds,
            "torch_threads": THREADS,
            "zoo_train_images": decoded,
        },
        "epoch_seconds": times,
        "median_epoch_seconds": median,
        "fastest_epoch_seconds": fastest,
    }
    publish("folder_epoch", result, markdown(result), args.out)


def run_rounds(folder: Path, tmp: Path, rounds: int, times: dict) -> int:
    from zoo.data import as_float
    from zoo.data.by_path import make_request, open_path

    splits = open_path(make_request(folder, test_fraction=0.01))  # decodes into the cache once
    preloaded = as_float(torch.from_numpy(splits.train.array[splits.train.rows]))
    for rep in range(rounds):
        for name in MODELS:
            print(f"round {rep + 1}/{rounds}: {name}", file=sys.stderr)
            times[name]["zoo"].append(zoo_epoch(name, folder, tmp / f"run-{name}-{rep}"))
            times[name]["torchvision-0"].append(torchvision_epoch(name, folder, 0))
            times[name]["torchvision-2"].append(torchvision_epoch(name, folder, 2))
            times[name]["bare"].append(bare_epoch(name, preloaded))
    return len(preloaded)


def markdown(result) -> str:
    m, s = result["machine"], result["settings"]
    median, fastest = result["median_epoch_seconds"], result["fastest_epoch_seconds"]
    rows = []
    for name, loops in median.items():
        quickest = fastest[name]
        for loop, seconds in loops.items():
            rows.append(
                f"| {name} | {loop} | {seconds:.2f} | {seconds / loops['bare']:.2f}x | "
                f"{loops['torchvision-2'] / seconds:.2f}x | {quickest[loop]:.2f} | "
                f"{quickest[loop] / quickest['bare']:.2f}x | {quickest['torchvision-2'] / quickest[loop]:.2f}x |"
            )
    return "\n".join(
        [
            "# One epoch on a folder of 3x32x32 PNGs",
            "",
            f"{m['cpu']}, {m['cores']} cores, torch {m['versions']['torch']}, {s['torch_threads']} torch threads, "
            f"{m['date']}; {s['zoo_train_images']:,} training images, batch {s['batch']}, Adam {s['lr']}, median of "
            f"{s['rounds']} round(s). Load average {result['load_average_before'][0]:.2f} before, "
            f"{result['load_average_after'][0]:.2f} after (other work shared the machine when it is above 0; the "
            "fastest round is then the steadier figure).",
            "",
            "| model | loop | median s / epoch | vs bare floor | speed-up over ImageFolder, 2 workers | "
            "fastest s / epoch | vs bare floor | speed-up over ImageFolder, 2 workers |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    main()
