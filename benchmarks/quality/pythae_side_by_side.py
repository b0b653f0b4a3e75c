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

With ``--static-binary`` both sides train on one seeded Bernoulli draw of the MNIST images (the
training subset and the test split, written once as an .npz that the zoo opens with ``--data``), the
statically binarized MNIST of the likelihood literature, and the NLL is measured on that draw's test
images. ``--set key=value`` changes the network on both sides (``--set hidden=512``).

pythae runs in its own virtual environment (default .peers/pythae; see docs/benchmarks.md):

    python -m benchmarks.quality.pythae_side_by_side [--families beta-vae wae] [--subset 10000]
        [--epochs 1] [--batch 100] [--lr 1e-3] [--images 2000] [--nll-images 200] [--k 1000]
        [--static-binary] [--set hidden=512]

The VAE of issue 28's comparison (784-512-20, batch 128, lr 1e-3, 10 epochs, static binarization):

    python -m benchmarks.quality.pythae_side_by_side --families vae --subset 60000 --epochs 10 \
        --batch 128 --static-binary --set hidden=512 --nll-images 1000
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
from zoo.data.by_path import DataRequest
from zoo.data.loading import load_splits
from zoo.train.loop import fit_prior, train
from zoo.train.run_folder import load_run, read_metrics

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".peers" / "pythae" / "bin" / "python"
SEED = 0


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


def static_binary(subset: int, out: Path) -> Path:
    """One seeded Bernoulli draw of MNIST's first ``subset`` training images and its test split, as
    uint8 0/255 in an .npz (x_train, x_test): the data both sides train and are measured on."""
    splits = load_splits(get_dataset("mnist"), None, subset, torch.device("cpu"))
    generator = torch.Generator().manual_seed(SEED)
    arrays = {
        name: (torch.bernoulli(as_float(split), generator=generator) * 255).to(torch.uint8).numpy()
        for name, split in (("x_train", splits.train), ("x_test", splits.test))
    }
    path = out / "mnist-static-binary.npz"
    np.savez(path, **arrays)
    return path


def zoo_side(family: str, subset: int, epochs: int, out: Path, opts: dict) -> tuple:
    sets = {"schedule": "constant", "score_holdout": 0, **opts["sets"]}
    data = {"data": DataRequest(str(opts["data"]))} if opts["data"] else {"subset": subset}
    start = time.perf_counter()
    run = train(
        family,
        out / f"zoo-{family}",
        epochs=epochs,
        batch_size=opts["batch"],
        lr=opts["lr"],
        seed=opts["seed"],
        sets=sets,
        **data,
    )
    seconds = time.perf_counter() - start
    loop_seconds = sum(r["epoch_seconds"] for r in read_metrics(run))
    loaded = load_run(run)
    return (
        loaded.model,
        loaded.prior,
        {"seconds_per_epoch": seconds / epochs, "loop_seconds_per_epoch": loop_seconds / epochs},
    )


def run_pythae_side(family: str, subset: int, epochs: int, batch, lr, seed, weights: Path, sets: dict, data="") -> dict:
    """benchmarks.quality.pythae_side in pythae's own interpreter (its arguments, in order); its JSON
    report. The trained networks' weights are at ``weights``."""
    command = [PEER_PYTHON, "-m", "benchmarks.quality.pythae_side", family, subset, epochs, batch, lr, seed, weights]
    command += [json.dumps(sets), data]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"pythae side of {family} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pythae_version() -> str:
    command = [str(PEER_PYTHON), "-c", "import importlib.metadata as m; print(m.version('pythae'))"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


def pythae_side(family: str, subset: int, epochs: int, out: Path, opts: dict) -> tuple:
    weights = out / f"pythae-{family}.safetensors"
    report = run_pythae_side(
        family, subset, epochs, opts["batch"], opts["lr"], opts["seed"], weights, opts["sets"], opts["data"]
    )
    model = zoo.create_model(family, **opts["sets"])
    model.load_state_dict(load_file(weights))
    prior = model.make_prior()
    fit_prior(model, prior, opts["train"])  # an ex-post density (rae's mixture) as the zoo's loop fits it
    return model, prior, {"seconds_per_epoch": report["train_seconds"] / epochs}


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"# The zoo's families beside pythae {result['pythae_version']} ({result['machine']['cpu']})",
        "",
        f"MNIST, the first {s['subset']:,} training images"
        + (", statically binarized (one seeded draw of train and test)" if s.get("static_binary") else "")
        + f", {s['epochs']} epoch(s), batch {s['batch']}, constant lr {s['lr']:g}, seed {s['seed']}; "
        f"the same zoo networks on both sides{''.join(f', {k}={v}' for k, v in s.get('sets', {}).items())}. "
        "Test MSE and the "
        f"Frechet distance on {s['images']:,} test images (classifier test accuracy "
        f"{result['classifier_accuracy']:.3f}); "
        f"NLL on {s['nll_images']} binarized test images at k = {s['k']}. Lower is better everywhere. "
        "The whole call's time includes the zoo's evaluation of the test split after each epoch and its "
        "checkpoints (pythae's pipeline is given no evaluation set); the training steps' time is the "
        "zoo's epoch time without them (pythae: its whole call).",
        "",
        "| family | library | s / epoch, whole call | s / epoch, steps | test MSE | Frechet distance | NLL |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        nll = f"{row['nll']:.2f}" if "nll" in row else "-"
        lines.append(
            f"| {row['family']} | {row['library']} | {row['seconds_per_epoch']:.2f} | "
            f"{row.get('loop_seconds_per_epoch', row['seconds_per_epoch']):.2f} | {row['test_mse']:.4f} | "
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
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--seed", type=int, default=SEED, help="both sides' training seed (the measurements keep theirs)"
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--static-binary", action="store_true", help="train and measure on one Bernoulli draw")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a network setting, both sides")
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        raise SystemExit(f"no pythae environment at {PEER_PYTHON}: see the docstring")
    out = Path(tempfile.mkdtemp(prefix="pythae-side-"))
    sets = dict(item.split("=", 1) for item in args.set)
    data = static_binary(args.subset, out) if args.static_binary else ""
    opts = {"batch": args.batch, "lr": args.lr, "sets": sets, "data": data, "seed": args.seed}
    splits = load_splits(get_dataset("mnist"), None, args.subset, torch.device("cpu"))
    train_x, test_x = as_float(splits.train), as_float(splits.test)[: args.images]
    opts["train"] = torch.as_tensor(np.load(data)["x_train"]) if data else splits.train
    if data:  # measured on the draw both sides trained on
        test_x = torch.as_tensor(np.load(data)["x_test"][: args.images]).float() / 255
    body, head = classifier(train_x, torch.as_tensor(splits.train_labels).long())
    with torch.no_grad():
        accuracy = float(
            (head(body(test_x)).argmax(1) == torch.as_tensor(splits.test_labels[: args.images])).float().mean()
        )
    rows = []
    for family in args.families:
        for library, side in (("zoo", zoo_side), ("pythae", pythae_side)):
            model, prior, timing = side(family, args.subset, args.epochs, out, opts)
            rows.append(
                {
                    "family": family,
                    "library": library,
                    **timing,
                    **measure(model, prior, test_x, body, args.nll_images, args.k),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    version = pythae_version()
    settings = {
        "subset": args.subset,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "static_binary": bool(data),
        "sets": sets,
        "seed": args.seed,
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
