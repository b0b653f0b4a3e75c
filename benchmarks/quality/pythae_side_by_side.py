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

vq-vae's sampler is a second model: the zoo trains its PixelCNN prior as the run's second stage, and
pythae fits its own PixelCNNSampler on its VQVAE's codes for as many epochs; each side's samples are
drawn from its own prior. ``--seed 0 1 2`` repeats every run with each seed and reports mean ± sd.

With ``--static-binary`` both sides train on one seeded Bernoulli draw of the MNIST images (the
training subset and the test split, written once as an .npz that the zoo opens with ``--data``), the
statically binarized MNIST of the likelihood literature, and the NLL is measured on that draw's test
images. ``--set key=value`` changes the network on both sides (``--set hidden=512``).

pythae runs in its own virtual environment (default .peers/pythae; see docs/benchmarks.md):

    python -m benchmarks.quality.pythae_side_by_side [--families beta-vae wae] [--subset 10000]
        [--epochs 1] [--batch 100] [--lr 1e-3] [--images 2000] [--nll-images 200] [--k 1000]
        [--seed 0 1 2] [--static-binary] [--set hidden=512]

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
def measure(model, prior, test_x, features, nll_images: int, k: int, outputs: dict) -> dict:
    """The same measures of either side's trained network (a zoo network, or None for pythae's own
    networks); ``outputs`` holds what came from outside it: ``samples`` of a sampler that is a
    second model (pythae's PixelCNN for its VQVAE), ``recon`` of networks no zoo model can hold."""
    x = test_x
    if model is not None:
        model.eval()
    recon = outputs["recon"] if "recon" in outputs else model.reconstruct(x)
    samples = outputs.get("samples")
    if samples is None:
        generator = torch.Generator().manual_seed(SEED)
        eps = torch.randn(len(x), model.noise_dim(prior), generator=generator)
        samples = model.generate(eps, prior)
    result = {
        "test_mse": float((recon - x).pow(2).mean()),
        "frechet": frechet(features(x).numpy(), features(samples).numpy()),
    }
    if model is not None and hasattr(model, "indices"):  # a codebook's entries in use: 1 is a collapse
        result["codes_used"] = int(model.indices(model.encoder(x)).unique().numel())
    if model is not None and model.has_likelihood and nll_images:
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
    timing = {"seconds_per_epoch": seconds / epochs, "loop_seconds_per_epoch": loop_seconds / epochs}
    return loaded.model, loaded.prior, timing, {}


def run_pythae_side(
    family: str, subset: int, epochs: int, batch, lr, seed, weights: Path, sets: dict, data="", samples=0, own=False
) -> dict:
    """benchmarks.quality.pythae_side in pythae's own interpreter (see its docstring); its JSON
    report. The trained networks' weights are at ``weights``, and beside them a sampler's
    ``samples`` images for the families whose sampler is a second model (and, with ``own``,
    the reconstructions of pythae's own networks)."""
    command = [PEER_PYTHON, "-m", "benchmarks.quality.pythae_side", family, subset, epochs, batch, lr, seed, weights]
    command += ["--sets", json.dumps(sets), "--data", data, "--samples", samples] + (["--own-networks"] if own else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"pythae side of {family} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pythae_version() -> str:
    command = [str(PEER_PYTHON), "-c", "import importlib.metadata as m; print(m.version('pythae'))"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


def pythae_side(family: str, subset: int, epochs: int, out: Path, opts: dict, own: bool = False) -> tuple:
    weights = out / f"pythae-{family}{'-own' if own else ''}.safetensors"
    report = run_pythae_side(
        family,
        subset,
        epochs,
        opts["batch"],
        opts["lr"],
        opts["seed"],
        weights,
        opts["sets"],
        opts["data"],
        opts["images"],
        own,
    )
    drawn = Path(f"{weights}.outputs.safetensors")
    outputs = load_file(drawn) if drawn.exists() else {}
    timing = {"seconds_per_epoch": report["train_seconds"] / epochs}
    if own:  # no zoo network holds pythae's: what it measured of them
        return None, None, {**timing, **{k: report[k] for k in ("codes_used",) if k in report}}, outputs
    model = zoo.create_model(family, **opts["sets"])
    model.load_state_dict(load_file(weights))
    prior = model.make_prior()
    fit_prior(model, prior, opts["train"])  # an ex-post density (rae's mixture) as the zoo's loop fits it
    return model, prior, timing, outputs


def pythae_own_side(family: str, subset: int, epochs: int, out: Path, opts: dict) -> tuple:
    """pythae's model of the family around its own MNIST networks (vq-vae only)."""
    return pythae_side(family, subset, epochs, out, opts, own=True)


def spread(values: list) -> str:
    """``mean`` of one value, ``mean ± sd`` of several (sample standard deviation)."""
    mean = float(np.mean(values))
    return f"{mean:.4g}" if len(values) == 1 else f"{mean:.4g} ± {float(np.std(values, ddof=1)):.2g}"


def markdown(result: dict) -> str:
    s = result["settings"]
    seeds = s.get("seeds", [s.get("seed", SEED)])
    lines = [
        f"# The zoo's families beside pythae {result['pythae_version']} ({result['machine']['cpu']})",
        "",
        f"MNIST, the first {s['subset']:,} training images"
        + (", statically binarized (one seeded draw of train and test)" if s.get("static_binary") else "")
        + f", {s['epochs']} epoch(s), batch {s['batch']}, constant lr {s['lr']:g}, "
        + (f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} (mean ± sd)")
        + f"; the same zoo networks on both sides{''.join(f', {k}={v}' for k, v in s.get('sets', {}).items())}. "
        "Test MSE and the "
        f"Frechet distance on {s['images']:,} test images (classifier test accuracy "
        f"{result['classifier_accuracy']:.3f}); "
        f"NLL on {s['nll_images']} binarized test images at k = {s['k']}. Lower is better everywhere. "
        "The whole call's time includes the zoo's evaluation of the test split after each epoch and its "
        "checkpoints (pythae's pipeline is given no evaluation set); the training steps' time is the "
        "zoo's epoch time without them (pythae: its whole call). vq-vae's times cover both stages, the "
        "PixelCNN prior's epochs too, and pythae's samples come from its own PixelCNNSampler (10 masked "
        "layers) fitted for as many epochs; codes used: the codebook entries the test images use, per seed "
        "(1 is a collapsed codebook); pythae's own networks: its MNIST ResNets (a 4 x 4 grid of 16-d codes).",
        "",
        "| family | library | s / epoch, whole call | s / epoch, steps | test MSE | Frechet distance | NLL "
        "| codes used |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    groups = {}
    for row in result["rows"]:
        groups.setdefault((row["family"], row["library"]), []).append(row)
    for (family, library), rows in groups.items():
        keys = ("seconds_per_epoch", "test_mse", "frechet", "nll", "codes_used")
        column = {key: [row.get(key) for row in rows] for key in keys}
        steps = [row.get("loop_seconds_per_epoch", row["seconds_per_epoch"]) for row in rows]
        nll = spread(column["nll"]) if "nll" in rows[0] else "-"
        codes = " / ".join(map(str, column["codes_used"])) if "codes_used" in rows[0] else "-"
        lines.append(
            f"| {family} | {library} | {np.mean(column['seconds_per_epoch']):.2f} | {np.mean(steps):.2f} | "
            f"{spread(column['test_mse'])} | {spread(column['frechet'])} | {nll} | {codes} |"
        )
    return "\n".join(lines) + "\n"


def parse_arguments():
    parser = arguments(__doc__)
    parser.add_argument("--families", nargs="+", default=["beta-vae", "wae"])
    parser.add_argument("--subset", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--nll-images", type=int, default=200)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[SEED],
        help="both sides' training seeds, one run each (the measurements keep theirs)",
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--static-binary", action="store_true", help="train and measure on one Bernoulli draw")
    parser.add_argument(
        "--pythae-own-networks",
        action="store_true",
        help="also train vq-vae's pythae model around pythae's own MNIST ResNets (a row of its own)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a network setting, both sides")
    return parser.parse_args()


def compare(args, out: Path, opts: dict, test_x, features) -> list:
    """Every family, seed and library trained and measured: one row each, printed as it comes."""
    rows = []
    for family in args.families:
        sides = [("zoo", zoo_side), ("pythae", pythae_side)]
        if args.pythae_own_networks and family == "vq-vae":
            sides.append(("pythae, its own networks", pythae_own_side))
        for seed in args.seed:
            folder = out / f"seed-{seed}"
            folder.mkdir(exist_ok=True)
            for library, side in sides:
                model, prior, timing, outputs = side(family, args.subset, args.epochs, folder, {**opts, "seed": seed})
                measured = measure(model, prior, test_x, features, args.nll_images, args.k, outputs)
                rows.append({"family": family, "library": library, "seed": seed, **timing, **measured})
                print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main():
    args = parse_arguments()
    if not PEER_PYTHON.exists():
        raise SystemExit(f"no pythae environment at {PEER_PYTHON}: see the docstring")
    out = Path(tempfile.mkdtemp(prefix="pythae-side-"))
    sets = dict(item.split("=", 1) for item in args.set)
    data = static_binary(args.subset, out) if args.static_binary else ""
    opts = {"batch": args.batch, "lr": args.lr, "sets": sets, "data": data, "images": args.images}
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
    rows = compare(args, out, opts, test_x, body)
    version = pythae_version()
    settings = {
        "subset": args.subset,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "static_binary": bool(data),
        "sets": sets,
        "seeds": args.seed,
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
