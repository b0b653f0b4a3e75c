"""The zoo's families side by side with pythae's own implementations, in one run: the same encoder
and decoder networks (pythae takes custom networks; both sides train the zoo's), the same MNIST
training subset, batch, learning rate (constant), seed and epochs. Each side trains with its own
objective and loop; the trained networks are then measured by the same code:

- wall seconds per epoch of each library's training call (the zoo's `train()`, which also
  evaluates the test split and fits the prior each epoch; pythae's `TrainingPipeline`, no eval set);
- reconstruction error (mean squared, per pixel) on the test images;
- a Frechet distance between test images and as many samples, in the 128 features of a small MNIST
  classifier trained once here (comparable side by side only, not with published FIDs);
- for a family with a likelihood, the NLL at k importance samples on binarized test images, by the
  zoo's importance weights applied to both sides' networks.

pythae runs in its own virtual environment (default .peers/pythae; see docs/benchmarks.md):

    python -m benchmarks.quality.pythae_side_by_side [--families beta-vae wae] [--subset 10000]
        [--epochs 1] [--images 2000] [--nll-images 200] [--k 1000]
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

import zoo
from benchmarks.machine import arguments, describe, publish
from zoo.core.registry import get_dataset
from zoo.data import as_float
from zoo.data.loading import load_splits
from zoo.train.loop import train
from zoo.train.run_folder import load_run, read_metrics

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".peers" / "pythae" / "bin" / "python"
BATCH, LR, SEED = 100, 1e-3, 0


def classifier(train_x, train_y, epochs: int = 2):
    """A 784-256-128-10 MLP; its 128 ReLU features are the Frechet distance's space."""
    torch.manual_seed(SEED)
    body = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU()
    )
    head = torch.nn.Linear(128, 10)
    optimizer = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=1e-3)
    for _ in range(epochs):
        for i in torch.randperm(len(train_x)).split(128):
            loss = torch.nn.functional.cross_entropy(head(body(train_x[i])), train_y[i])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return body.eval(), head.eval()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the square root by scipy."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    ridge = 1e-6 * np.eye(a.shape[1])  # dead ReLU features leave a covariance singular
    s_a, s_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


@torch.no_grad()
def measure(model, prior, test_x, features, nll_images: int, k: int) -> dict:
    model.eval()
    x = test_x
    mse = float((model.reconstruct(x) - x).pow(2).mean())
    generator = torch.Generator().manual_seed(SEED)
    eps = torch.randn(len(x), model.noise_dim(prior), generator=generator)
    samples = model.generate(eps, prior)
    result = {"test_mse": mse, "frechet": frechet(features(x).numpy(), features(samples).numpy())}
    if model.has_likelihood and nll_images:
        torch.manual_seed(SEED)
        binary = torch.bernoulli(x[:nll_images], generator=torch.Generator().manual_seed(SEED))
        nll = [
            -(torch.logsumexp(model.log_importance_weights(binary[i : i + 1], k), 1) - math.log(k))
            for i in range(len(binary))
        ]
        result["nll"] = float(torch.cat(nll).mean())
    return result


def zoo_side(family: str, subset: int, epochs: int, out: Path) -> tuple:
    sets = {"schedule": "constant", "score_holdout": 0}
    start = time.perf_counter()
    run = train(
        family, out / f"zoo-{family}", epochs=epochs, subset=subset, batch_size=BATCH, lr=LR, seed=SEED, sets=sets
    )
    seconds = time.perf_counter() - start
    loop_seconds = sum(r["epoch_seconds"] for r in read_metrics(run))
    loaded = load_run(run)
    return (
        loaded.model,
        loaded.prior,
        {"seconds_per_epoch": seconds / epochs, "loop_seconds_per_epoch": loop_seconds / epochs},
    )


def pythae_side(family: str, subset: int, epochs: int, out: Path) -> tuple:
    weights = out / f"pythae-{family}.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [str(PEER_PYTHON), "-m", "benchmarks.quality.pythae_side", family, str(subset), str(epochs)]
    done = subprocess.run(
        [*command, str(BATCH), str(LR), str(SEED), str(weights)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"pythae side of {family} failed: {done.stderr.strip().splitlines()[-1:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    model = zoo.create_model(family)
    model.load_state_dict(load_file(weights))
    prior = model.make_prior()
    return model, prior, {"seconds_per_epoch": report["train_seconds"] / epochs}


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"# The zoo's families beside pythae {result['pythae_version']} ({result['machine']['cpu']})",
        "",
        f"MNIST, the first {s['subset']:,} training images, {s['epochs']} epoch(s), batch {s['batch']}, "
        f"constant lr {s['lr']:g}, seed {s['seed']}; the same zoo networks on both sides. Test MSE and the "
        f"Frechet distance on {s['images']:,} test images (classifier test accuracy "
        f"{result['classifier_accuracy']:.3f}); "
        f"NLL on {s['nll_images']} binarized test images at k = {s['k']}. Lower is better everywhere.",
        "",
        "| family | library | s / epoch | test MSE | Frechet distance | NLL |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        nll = f"{row['nll']:.2f}" if "nll" in row else "-"
        lines.append(
            f"| {row['family']} | {row['library']} | {row['seconds_per_epoch']:.1f} | {row['test_mse']:.4f} | "
            f"{row['frechet']:.2f} | {nll} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = arguments(__doc__)
    parser.add_argument("--families", nargs="+", default=["beta-vae", "wae"])
    parser.add_argument("--subset", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--nll-images", type=int, default=200)
    parser.add_argument("--k", type=int, default=1000)
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        raise SystemExit(f"no pythae environment at {PEER_PYTHON}: see the docstring")
    splits = load_splits(get_dataset("mnist"), None, args.subset, torch.device("cpu"))
    train_x, test_x = as_float(splits.train), as_float(splits.test)[: args.images]
    body, head = classifier(train_x, torch.as_tensor(splits.train_labels).long())
    with torch.no_grad():
        accuracy = float(
            (head(body(test_x)).argmax(1) == torch.as_tensor(splits.test_labels[: args.images])).float().mean()
        )
    rows = []
    out = Path(tempfile.mkdtemp(prefix="pythae-side-"))
    for family in args.families:
        for library, side in (("zoo", zoo_side), ("pythae", pythae_side)):
            model, prior, timing = side(family, args.subset, args.epochs, out)
            rows.append(
                {
                    "family": family,
                    "library": library,
                    **timing,
                    **measure(model, prior, test_x, body, args.nll_images, args.k),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    version = subprocess.run(
        [str(PEER_PYTHON), "-c", "import importlib.metadata as m; print(m.version('pythae'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    settings = {
        "subset": args.subset,
        "epochs": args.epochs,
        "batch": BATCH,
        "lr": LR,
        "seed": SEED,
        "images": args.images,
        "nll_images": args.nll_images,
        "k": args.k,
    }
    result = {
        "machine": describe(),
        "pythae_version": version,
        "settings": settings,
        "classifier_accuracy": accuracy,
        "rows": rows,
    }
    publish("pythae_side_by_side", result, markdown(result), args.out)


if __name__ == "__main__":
    main()
