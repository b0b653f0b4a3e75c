"""How far a likelihood family gets on this machine: train it (or take a finished run), then the
test objective after every epoch (the negative ELBO, or the negative IWAE bound of a run trained
with it; from the run's metrics.jsonl), the NLL at the end by the zoo's
own estimator (`zoo eval --nll`: k importance samples on the binarized test images), the wall time,
and the reference figure the issue set, drawn as a curve beside that reference.

    ZOO_DATA_DIR=../shared/datasets python -m benchmarks.quality.convergence vamp --epochs 100 \\
        --set kl_warmup_epochs=50 [--k 1000] [--images 0] [--run RUN]
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import arguments, describe, publish

# The figure each family is measured against (nats, binarized MNIST), and where it comes from.
REFERENCES = {
    "vamp": (85.79, "pythae's reproduced VAMP (the paper: 85.57)"),
    "hvae": (82.90, "Burda et al.'s two-layer IWAE, k = 50"),
    "vae": (89.78, "pythae's reproduced VAE"),
}


def zoo(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"zoo {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def objective(model_config: dict) -> str:
    k = int(model_config.get("iw_samples", 1))
    return f"negative IWAE bound (k = {k})" if k > 1 else "negative ELBO"


def markdown(result: dict) -> str:
    curve = result["curve"]
    reference, source = result["reference"]
    lines = [
        f"# {result['family']}: {len(curve)} epochs on {result['machine']['cpu']}",
        "",
        f"`zoo train {result['family']} --epochs {result['epochs']}"
        + "".join(f" --set {s}" for s in result["sets"])
        + f"`: {result['train_seconds'] / 60:.1f} minutes of training; then `zoo eval --nll` at "
        f"k = {result['nll']['iw_samples']} on {result['nll']['test_images']:,} binarized test images "
        f"({result['nll']['seconds']:.0f} s).",
        "",
        f"**NLL {result['nll']['nll']:.2f} nats** (standard error {result['nll']['nll_stderr']:.2f}); the reference: "
        f"{reference:.2f}, {source}.",
        "",
        f"| epoch | test {result.get('objective', 'negative ELBO')} (nats) |",
        "|---:|---:|",
    ]
    step = max(1, len(curve) // 10)
    for epoch, value in list(enumerate(curve, 1))[step - 1 :: step]:
        lines.append(f"| {epoch} | {value:.2f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    curve = result["curve"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(range(1, len(curve) + 1), curve, label=f"test {result.get('objective', 'negative ELBO')}")
    ax.scatter([len(curve)], [result["nll"]["nll"]], color="C1", zorder=3, label="NLL (importance sampled)")
    reference, source = result["reference"]
    ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label=f"{reference:.2f}: {source}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats")
    ax.set_ylim(reference - 3, min(max(curve), reference + 30))
    ax.set_title(f"{result['family']} on binarized MNIST, {result['machine']['cpu']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main():
    parser = arguments(__doc__)
    parser.add_argument("family", choices=sorted(REFERENCES))
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, default=0, help="test images for the NLL (0: all)")
    parser.add_argument("--run", type=Path, help="a finished run of the family to measure instead of training")
    args = parser.parse_args()
    run = args.run or Path(tempfile.mkdtemp(prefix="convergence-")) / args.family
    if args.run is None:
        start = time.perf_counter()
        zoo("train", args.family, "--epochs", args.epochs, *sum((["--set", s] for s in args.set), []), "--out", run)
        print(f"trained in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    nll = json.loads(zoo("eval", run, "--nll", "--iw-samples", args.k, "--nll-images", args.images, "--json"))
    result = {
        "machine": describe(),
        "family": args.family,
        "epochs": config["train_config"]["epochs"],
        "sets": args.set,  # with --run: the settings that run was trained with, as told
        "train_config": config["train_config"],
        "model_config": config["model_config"],
        "train_seconds": sum(m["epoch_seconds"] for m in metrics),
        "curve": [m["test_loss"] for m in metrics],  # the objective trained, on the test split
        "objective": objective(config["model_config"]),
        "nll": {k: v for k, v in nll.items() if not isinstance(v, dict | list)},
        "reference": REFERENCES[args.family],
    }
    publish(f"convergence_{args.family}", result, markdown(result), args.out, plot=lambda path: plot(result, path))


if __name__ == "__main__":
    main()
