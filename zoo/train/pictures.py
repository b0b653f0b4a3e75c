"""The pictures of a run folder: recon.png, samples.png, latent.png, curves.png.

Image data (C, H, W) gets image grids; vector data (like points3d) gets scatter plots. The choice
follows the data's shape, never the architecture.
"""

import numpy as np
import torch

from zoo.data import as_float
from zoo.data.splits import spread_rows

N_SAMPLES = 64
MAX_NAMED_LABELS = 20  # more labels than this get a colour bar instead of a legend


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path):
    from zoo.core.atomic import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    _pyplot().close(fig)


@torch.no_grad()
def draw_run(run_dir, model, prior, splits, history) -> None:
    model.eval()
    device = next(model.parameters()).device
    # Up to two rows of 16 test images over their reconstructions (fewer for a small test split).
    columns = min(16, max(1, len(splits.test) // 2))
    rows = min(2, len(splits.test) // columns)
    # A seeded sample spread over the test split: its first rows may all be one class.
    x = as_float(splits.test[torch.from_numpy(spread_rows(len(splits.test), rows * columns))]).to(device)
    x_hat = model.reconstruct(x)
    generator = torch.Generator(device="cpu").manual_seed(0)
    eps = torch.randn(N_SAMPLES, model.noise_dim(prior), generator=generator).to(device)
    samples = model.generate(eps, prior)
    if len(model.data_shape) == 3:
        from zoo.core.image_grid import save_grid

        pairs = torch.stack([x.view(rows, columns, *x.shape[1:]), x_hat.view(rows, columns, *x.shape[1:])], 1)
        save_grid(run_dir / "recon.png", pairs.flatten(0, 2).float().cpu().numpy(), columns=columns)
        save_grid(run_dir / "samples.png", samples.float().cpu().numpy(), columns=8)
    else:
        test = as_float(splits.test).to(device)
        _scatter(
            run_dir / "recon.png",
            "test points and their reconstructions",
            [(test, "original"), (model.reconstruct(test), "reconstruction")],
        )
        _scatter(run_dir / "samples.png", "samples from the latent prior", [(samples, "sample")])
    _draw_latents(run_dir / "latent.png", model, splits, device)
    _draw_curves(run_dir / "curves.png", history)


def _scatter(path, title, groups):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for points, label in groups:
        p = points.flatten(1).float().cpu().numpy()
        ax.scatter(p[:, 0], p[:, 1] if p.shape[1] > 1 else np.zeros(len(p)), s=8, alpha=0.7, label=label)
    ax.set(title=title, xlabel="x0", ylabel="x1")
    ax.legend()
    _save_figure(fig, path)


def _draw_latents(path, model, splits, device):
    """Test latents in 2-D (their top two principal directions when the code is wider)."""
    x = as_float(splits.test[:2000]).to(device)
    z = model.encode(x).flatten(1).double().cpu()
    if z.shape[1] > 2:
        z = z - z.mean(0)
        z = z @ torch.linalg.svd(z, full_matrices=False).Vh[:2].T
    z = z.numpy()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    labels = splits.test_labels
    colour = labels[: len(z)].cpu().numpy() if labels is not None else None
    y = z[:, 1] if z.shape[1] > 1 else np.zeros(len(z))
    names = (splits.info or {}).get("label_names") or []
    if colour is not None and 0 < len(names) <= MAX_NAMED_LABELS:
        # A folder's labels: one colour per subfolder, named in a legend (-1: images with no folder).
        for index, name in [(-1, "(no label)"), *enumerate(names)]:
            chosen = colour == index
            if chosen.any():
                ax.scatter(z[chosen, 0], y[chosen], s=4, label=name)
        ax.legend(markerscale=3, fontsize="small")
    else:
        points = ax.scatter(z[:, 0], y, c=colour, s=4, cmap="tab10" if colour is not None else None)
        if colour is not None:
            fig.colorbar(points, ax=ax, label="label")
    ax.set(title="test latents" + (" (top-2 principal directions)" if model.latent_dim > 2 else ""))
    _save_figure(fig, path)


def _draw_curves(path, history):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    ax.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    ax.legend()
    _save_figure(fig, path)
