"""``zoo eval``: test-split metrics of a run folder, for any model.

Every model gets ``mse`` (per pixel) and, when the data lies in [0, 1], ``bce`` (summed per image,
nats); a model adds its own per-sample terms through ``eval_terms`` (a VAE's ``neg_elbo``) and its
whole-dataset ones through ``extra_metrics`` (``pca-ae``'s ``pca_angle_deg``).
"""

from pathlib import Path

import torch

from .run_folder import load_run
from .data import as_float
from .registry import get_dataset
from .placement import EVAL_BATCH, load_splits, pick_device


@torch.no_grad()
def evaluate(run_dir, data_dir=None, device="cpu") -> dict:
    run = load_run(run_dir, device=pick_device(device))
    model = run.model
    subset = run.config.train_config.get("subset", 0)
    # Without --data-dir, evaluate on the files the run was trained on, if they are still there.
    source = run.config.data_source
    if data_dir is None and source and Path(source).is_dir():
        data_dir = source
    splits = load_splits(get_dataset(run.config.dataset), data_dir, subset, next(model.parameters()).device)
    test = splits.test
    unit_range = test.dtype == torch.uint8 or bool((test.min() >= 0) & (test.max() <= 1))
    torch.manual_seed(0)  # stochastic terms (a VAE's posterior draw) are repeatable
    totals: dict = {}
    for i in range(0, len(test), EVAL_BATCH):
        x = as_float(test[i : i + EVAL_BATCH])
        x_hat = model.reconstruct(x).float()
        terms = {"mse": (x_hat - x).pow(2).flatten(1).mean(1)}
        if unit_range:
            p = x_hat.clamp(1e-7, 1 - 1e-7)
            terms["bce"] = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
        terms.update(model.eval_terms(x))
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + float(value.double().sum())
    metrics = {key: value / len(test) for key, value in totals.items()}
    metrics.update(model.extra_metrics(as_float(splits.train)))
    metrics.update({"model": run.config.model, "dataset": run.config.dataset, "test_samples": len(test)})
    return metrics
