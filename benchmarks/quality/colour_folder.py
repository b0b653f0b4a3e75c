"""A user's own colour images, side by side with pythae, in one run: a folder of 600 tinted
Fashion-MNIST garments at mixed sizes (benchmarks.data.tinted_fashion), read at 32x32 by the zoo's
``--data``; the zoo's conv-vae with what the data decides (the discretized logistic of 8-bit pixels,
no binarization) and pythae's VAE around the same conv-vae networks with its default reconstruction
loss (the squared error), the same training images, epochs, batch, constant learning rate and seed.
Both are measured on the same held-out images by the same code:

- bits per dimension of the 8-bit pixels: the NLL by importance sampling (k draws), / (pixels x ln 2);
- the reconstruction's mean absolute error (from the posterior mean), beside the mean image's;
- wall seconds of each library's training call.

pythae models each pixel's mean only, so its bits per dimension are those of the discretized
logistic around its trained means with the best spread per pixel fitted afterwards on the training
images (the network's own spread output, which pythae never trains, zeroed): a bound in its favour.

    python -m benchmarks.quality.colour_folder [--epochs 110] [--batch 64] [--lr 1e-3] [--k 100]
"""

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

import zoo
from benchmarks.data.tinted_fashion import write_tinted_folder
from benchmarks.machine import arguments, describe, publish
from benchmarks.quality.pythae_side_by_side import PEER_PYTHON, pythae_version, run_pythae_side
from zoo.data import as_float
from zoo.data.by_path import make_request, open_path
from zoo.data.splits import place_split
from zoo.train.loop import train
from zoo.train.run_folder import load_run

SEED, SIDE = 0, "32"


def splits_of(folder: Path):
    splits = open_path(make_request(folder, image_size=SIDE))
    return place_split(splits.train, "cpu", 1e12), place_split(splits.test, "cpu", 1e12)


@torch.no_grad()
def measure(model, test: torch.Tensor, k: int) -> dict:
    model.eval()
    torch.manual_seed(SEED)
    nll = torch.cat(
        [
            -(torch.logsumexp(model.log_importance_weights(test[i : i + 4], k), 1) - math.log(k))
            for i in range(0, len(test), 4)
        ]
    )
    recon = model.decode(model.encode(test))
    return {
        "bits_per_dim": float(nll.mean() / (model.data_dim * math.log(2))),
        "mae": float((recon - test).abs().mean()),
        "mean_image_mae": float((test.mean(0, keepdim=True) - test).abs().mean()),
    }


def fit_spread(model, train_x: torch.Tensor, steps: int = 300) -> None:
    """The best per-pixel spread around a trained model's means, the rest of it frozen: zero the
    decoder's own spread channels (its last layer's second half), then fit ``log_scale_param``."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    channels = model.data_shape[0]
    with torch.no_grad():
        last.weight[:, channels:] = 0
        last.bias[channels:] = 0
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.log_scale_param.requires_grad_(True)
    optimizer = torch.optim.Adam([model.log_scale_param], lr=0.01)
    model.eval()
    with torch.no_grad():
        means = model.decode_params(model.posterior(train_x)[0])[0]
    for _ in range(steps):
        log_scale = model.log_scale.expand_as(means)
        loss = -model.log_px(means.flatten(1), train_x.flatten(1), log_scale.flatten(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def zoo_side(folder: Path, out: Path, args) -> tuple:
    start = time.perf_counter()
    run = train(
        "conv-vae",
        out / "zoo",
        data=make_request(folder, image_size=SIDE),
        epochs=args.epochs,
        batch_size=args.batch,
        lr=args.lr,
        seed=SEED,
        sets={"schedule": "constant", "score_holdout": 0},
    )
    return load_run(run).model, time.perf_counter() - start


def pythae_side(train_x: torch.Tensor, out: Path, args) -> tuple:
    data, weights = out / "train.npz", out / "pythae.safetensors"
    np.savez(data, x_train=(train_x * 255).round().to(torch.uint8).numpy())
    sets = {"likelihood": "logistic"}  # the same network, its spread channels unused by pythae
    report = run_pythae_side("conv-vae", 0, args.epochs, args.batch, args.lr, SEED, weights, sets, data)
    model = zoo.create_model("conv-vae", tuple(train_x.shape[1:]), **sets)
    model.load_state_dict(load_file(weights))
    fit_spread(model, train_x)
    return model, report["train_seconds"]


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"# A colour folder: the zoo's conv-vae beside pythae {result['pythae_version']} ({result['machine']['cpu']})",
        "",
        f"{s['train']} training and {s['test']} held-out images of a tinted Fashion-MNIST folder (600 files, mixed "
        f"sizes, some RGBA and 16-bit), read at 32x32; {s['epochs']} epochs, batch {s['batch']}, constant lr "
        f"{s['lr']:g}, seed {s['seed']}; the same conv-vae networks on both sides. Bits per dimension: the NLL at "
        f"k = {s['k']} on the held-out images; pythae's with the best per-pixel spread fitted after training.",
        "",
        "| library | objective | bits / dim | reconstruction MAE (mean image's) | training s |",
        "|---|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['library']} | {row['objective']} | {row['bits_per_dim']:.3f} | {row['mae']:.4f} "
            f"({row['mean_image_mae']:.4f}) | {row['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = arguments(__doc__)
    parser.add_argument("--epochs", type=int, default=110)  # about 1,000 steps of 64 from 540 images
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        raise SystemExit(f"no pythae environment at {PEER_PYTHON}: see benchmarks.quality.pythae_side_by_side")
    out = Path(tempfile.mkdtemp(prefix="colour-folder-"))
    folder = write_tinted_folder(out / "photos", 600)
    train_x, test_x = (as_float(split) for split in splits_of(folder))
    rows = []
    model, seconds = zoo_side(folder, out, args)
    rows.append({"library": "zoo", "objective": "discretized logistic (the data's default)", "seconds": seconds})
    rows[-1].update(measure(model, test_x, args.k))
    model, seconds = pythae_side(train_x, out, args)
    rows.append({"library": "pythae", "objective": "squared error (its default)", "seconds": seconds})
    rows[-1].update(measure(model, test_x, args.k))
    version = pythae_version()
    settings = {"train": len(train_x), "test": len(test_x), "epochs": args.epochs, "batch": args.batch}
    settings.update({"lr": args.lr, "seed": SEED, "k": args.k})
    result = {"machine": describe(), "pythae_version": version, "settings": settings, "rows": rows}
    publish("colour_folder", result, markdown(result), args.out)


if __name__ == "__main__":
    main()
