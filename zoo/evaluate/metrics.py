"""``zoo eval``: test-split metrics of a run folder, for any model.

Every model gets ``mse`` (per pixel) and, when the data lies in [0, 1], ``bce`` (summed per image,
nats); a model adds its own per-sample terms through ``eval_terms`` (a VAE's ``neg_elbo``) and its
whole-dataset ones through ``extra_metrics`` (``pca-ae``'s ``pca_angle_deg``). A run trained on
binarized data is evaluated on the binarized test split. ``--nll`` gives the importance-weighted
negative log-likelihood instead (``zoo.evaluate.likelihood``), on the binarized test split (on the 8-bit one
for a likelihood of 8-bit pixels), in nats per image and bits per dimension.
"""

import math
from dataclasses import replace
from pathlib import Path

import torch

from zoo.core.errors import ZooUsageError
from zoo.core.registry import get_dataset
from zoo.data import as_float
from zoo.data.loading import EVAL_BATCH, load_splits
from zoo.models.base import AutoEncoder
from zoo.train.devices import flush_denormals, pick_device
from zoo.train.run_folder import load_run


def check_data_shape(splits, run, where) -> None:
    """One line when the data's samples are not the shape the run's model takes."""
    if list(splits.test.shape[1:]) != list(run.config.data_shape):
        raise ZooUsageError(
            f"{where}: samples of shape {list(splits.test.shape[1:])}, the run {run.path} takes {run.config.data_shape}"
        )


def eval_splits(run, data_dir=None, binarize_test: bool | None = None, data=None):
    """The splits `zoo eval` measures a run on: the run's subset, and the test split binarized as the
    run was trained (or as asked). ``data``: another path than the run's own data (``--data``),
    prepared as the run's was."""
    cfg = run.config.training()
    if binarize_test is None:
        binarize_test = cfg.binarize == "dynamic"
    device = next(run.model.parameters()).device
    seed = cfg.test_binarization_seed if binarize_test else None
    request = data_request(run.config, data)
    if request is not None:
        splits = load_splits(
            None,
            None,
            cfg.subset,
            device,
            binarize_test_seed=seed,
            request=request,
            memory_budget=cfg.memory_budget,
            progress=True,
        )
        check_data_shape(splits, run, request.path)
        return splits
    # Without --data-dir, evaluate on the files the run was trained on, if they are still there.
    source = run.config.data_source
    if data_dir is None and source and Path(source).is_dir():
        data_dir = source
    return load_splits(
        get_dataset(run.config.dataset),
        data_dir,
        cfg.subset,
        device,
        binarize_test_seed=seed,
        memory_budget=cfg.memory_budget,
    )


def data_request(config, data=None):
    """What to read: for a run trained on data by path, its own data as recorded; for ``data``
    (``--data``), a folder's images prepared to the run's shape (its size and channels, the crop it
    was trained with), or an array file as it is."""
    from zoo.data.by_path import TEST_FRACTION, DataRequest
    from zoo.data.image_files import Preprocess

    if data is None:  # the run's own data: the same files, or an error (never a silent new split)
        if not config.data:
            return None
        return replace(DataRequest.from_record(config.data["asked"]), expect_fingerprint=config.data.get("fingerprint"))
    fraction = config.data.get("asked", {}).get("test_fraction", TEST_FRACTION)
    shape = config.data_shape
    if not Path(data).is_dir() or len(shape) != 3 or shape[0] not in (1, 3):
        return DataRequest(str(data), test_fraction=fraction)
    crop = config.data.get("preprocess", {}).get("crop")
    preprocess = Preprocess.from_record({"size": shape[1:], "channels": shape[0], "crop": crop})
    return DataRequest(str(data), preprocess, fraction)


@torch.no_grad()
def evaluate(run_dir, data_dir=None, device="cpu", data=None) -> dict:
    flush_denormals()
    run = load_run(run_dir, device=pick_device(device))
    splits = eval_splits(run, data_dir, data=data)
    model = run.model
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
    if type(model).extra_metrics is not AutoEncoder.extra_metrics:
        # Only a model that asks for the training split gets it (as float32: 4x a uint8 split's size).
        metrics.update(model.extra_metrics(as_float(splits.train[:])))
    metrics.update(
        {
            "model": run.config.model,
            "dataset": run.config.dataset,
            "test_samples": len(test),
            "binarize": run.config.training().binarize,
        }
    )
    return metrics


def evaluate_nll(run_dir, k=5000, images=0, data_dir=None, device="cpu", progress=False, data=None) -> dict:
    """The importance-weighted NLL of a run on the binarized test split (its first ``images``; 0: all),
    or on the 8-bit test split for a model whose likelihood is of 8-bit pixels.

    The Bernoulli protocol is on binarized data, so a run trained on grey levels is measured on the
    binarized test split too, and the report says so."""
    from zoo.evaluate.likelihood import check_has_likelihood, estimate_nll

    flush_denormals()
    run = load_run(run_dir, device=pick_device(device))
    check_has_likelihood(run.model, run.config.model)  # before any data is loaded
    binary = getattr(run.model, "binarized_data", True)  # a likelihood of binary pixels, or of 8-bit ones
    splits, cfg = eval_splits(run, data_dir, binarize_test=binary, data=data), run.config.training()
    test = splits.test[:images] if images else splits.test
    report = estimate_nll(run.model, test, k, progress=progress)
    trained, seed = cfg.binarize, cfg.test_binarization_seed
    report.update(
        {
            "model": run.config.model,
            "dataset": run.config.dataset,
            "run": str(run_dir),
            "device": str(next(run.model.parameters()).device),
            "nll_bits_per_dim": report["nll"] / (math.prod(run.config.data_shape) * math.log(2)),
            "binarization": (
                f"train: {trained}; test: one fixed Bernoulli draw (seed {seed})"
                if binary
                else "none: the 8-bit test pixels, as the likelihood models them"
            ),
            "train_binarize": trained,
            "test_binarization_seed": seed,
            # What the run folder says: None for a run whose config.json has no epoch count (one made
            # without training), where TrainConfig's default would claim ten.
            "epochs": cfg.epochs if "epochs" in run.config.train_config else None,
        }
    )
    if binary and trained != "dynamic":
        report["note"] = (
            f"trained with binarize={trained}; the test split was binarized for the NLL "
            "protocol, so the number is not comparable to a binarized-data run's"
        )
    return report
