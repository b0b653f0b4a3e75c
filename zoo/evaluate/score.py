"""``zoo score``: every input of a split scored by a run's model, written as a CSV from the most to
the least anomalous, with a picture of the top inputs over their reconstructions, and, given the
labels that count as normal, how well the score separates them from the rest (AUROC, average
precision), per label and overall."""

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from zoo.anomaly.metrics import auroc, average_precision
from zoo.anomaly.scores import score_split
from zoo.core.atomic import atomic_write_text
from zoo.core.errors import ZooUsageError
from zoo.data import as_float
from zoo.data.loading import load_splits
from zoo.train.devices import flush_denormals, pick_device
from zoo.train.run_folder import load_run, read_threshold

SCORES_CSV = "scores.csv"
TOP_PNG = "top.png"
SPLITS = ("test", "train")


def score_run(
    run_dir,
    *,
    data=None,
    dataset=None,
    data_dir=None,
    split=None,
    top=32,
    out=None,
    normal=(),
    device="cpu",
    progress=False,
) -> dict:
    """Score every file or row of ``data`` (a path, prepared as the run's data was; split
    ``split`` of it only when asked), split ``split`` (default test) of the run's own data or of the
    registered ``dataset``; write scores.csv and top.png into ``out`` (default RUN/scores); returns a
    report (and, given ``normal`` labels, the AUROC and average precision)."""
    from zoo.anomaly.normal_data import label_names, label_values

    whole = bool(data) and split is None  # new images to check: all of them, not a test split of them
    split = "test" if split is None else split
    if split not in SPLITS:
        raise ZooUsageError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if data and dataset:
        raise ZooUsageError("give --data PATH or --dataset NAME, not both")
    flush_denormals()
    run = load_run(run_dir, device=pick_device(device))
    splits, where = _splits(run, data, dataset, data_dir, whole)
    samples, labels = getattr(splits, split), getattr(splits, f"{split}_labels")
    normal_values = label_values(splits, normal, "--normal", where) if normal else None
    scores = score_split(run.model, samples, progress=progress)
    names = {value: name for name, value in label_names(splits).items()}
    labels = None if labels is None else labels.cpu().numpy()
    threshold = read_threshold(run.path)
    out = Path(out) if out is not None else run.path / "scores"
    order = np.argsort(-scores, kind="stable")
    csv_path = _write_csv(
        out / SCORES_CSV,
        order,
        scores,
        labels,
        names,
        threshold,
        _file_names(run, data, dataset, split, len(scores), whole),
    )
    picture = _draw_top(out / TOP_PNG, run.model, samples, order[:top]) if top > 0 else None
    report = {
        "model": run.config.model,
        "data": where,
        "split": "every file or row" if whole else split,
        "samples": len(scores),
        "definition": run.model.score_definition,
        "csv": str(csv_path),
        "picture": str(picture) if picture else None,
        "threshold": threshold["threshold"] if threshold else None,
        "flagged": int((scores > threshold["threshold"]).sum()) if threshold else None,
        "caveat": run.model.score_caveat,
    }
    if normal_values is not None:
        report["separation"] = separation(scores, labels, normal_values, names, where)
    return report


def _splits(run, data, dataset, data_dir, whole=False):
    """(the splits to score, their name for messages): scored as they are, never binarized; with
    ``whole``, every usable file or row of ``data`` as the test split."""
    from zoo.core.registry import get_dataset
    from zoo.evaluate.metrics import check_data_shape, data_request, eval_splits

    if whole:
        device = next(run.model.parameters()).device
        request = replace(data_request(run.config, data), whole=True)
        splits = load_splits(None, None, 0, device, request=request, progress=True)
        check_data_shape(splits, run, data)
        return splits, str(data)
    if dataset is None:
        splits = eval_splits(run, data_dir, binarize_test=False, data=data)
        return splits, str(data) if data else run.config.dataset
    device = next(run.model.parameters()).device
    splits = load_splits(get_dataset(dataset), data_dir, 0, device)
    check_data_shape(splits, run, f"--dataset {dataset}")
    return splits, dataset


def separation(scores, labels, normal_values, names, where) -> dict:
    """AUROC and average precision of the score with ``normal_values`` as normal and every other
    label as an anomaly: overall, and for each other label against the normal samples alone."""
    if labels is None:
        raise ZooUsageError(f"--normal: this split of {where} has no labels")
    is_normal = np.isin(labels, normal_values)
    if is_normal.all() or not is_normal.any():
        what = "every" if is_normal.all() else "none of the"
        raise ZooUsageError(
            f"--normal: {what} samples of {where} carry those labels; the AUROC needs both normal samples and anomalies"
        )
    per_label = {}
    for value in np.unique(labels[~is_normal]):
        pick = is_normal | (labels == value)
        per_label[names.get(int(value), str(value))] = {
            "auroc": auroc(scores[pick], ~is_normal[pick]),
            "average_precision": average_precision(scores[pick], ~is_normal[pick]),
            "samples": int((labels == value).sum()),
        }
    return {
        "normal": [names.get(int(v), str(v)) for v in normal_values],
        "normal_samples": int(is_normal.sum()),
        "anomalies": int((~is_normal).sum()),
        "auroc": auroc(scores, ~is_normal),
        "average_precision": average_precision(scores, ~is_normal),
        "per_label": per_label,
    }


def _file_names(run, data, dataset, split: str, count: int, whole=False) -> list | None:
    """Each scored sample's file (relative to the folder) for data that is a folder of images: the
    rows of the split as stored (before it was loaded into memory) index a fresh listing of the
    folder, when it is still the one that was decoded; else None."""
    from zoo.data.by_path import open_path
    from zoo.data.folder import list_folder
    from zoo.data.splits import MappedSplit
    from zoo.evaluate.metrics import data_request

    request = None if dataset else data_request(run.config, data)
    if request is not None and whole:
        request = replace(request, whole=True)
    if request is None or not Path(request.path).is_dir():
        return None
    stored = open_path(request)
    rows = getattr(stored, split)
    if not isinstance(rows, MappedSplit) or stored.info.get("kind") != "folder":
        return None
    listing = list_folder(Path(stored.info["path"]))
    if listing.fingerprint != stored.info.get("fingerprint"):
        return None  # the folder changed since: the rows no longer name its files
    return [listing.files[row] for row in rows.rows[:count]]


def _write_csv(path: Path, order, scores, labels, names, threshold, files=None) -> Path:
    """rank, index (in the split), file (for a folder), label (when known), score, anomalous (when
    the run has a threshold)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(
        ["rank", "index"]
        + (["file"] if files else [])
        + (["label"] if labels is not None else [])
        + ["score"]
        + (["anomalous"] if threshold else [])
    )
    for rank, index in enumerate(order, 1):
        row = [rank, int(index)] + ([files[index]] if files else [])
        if labels is not None:
            row.append(names.get(int(labels[index]), str(labels[index])))
        row.append(repr(float(scores[index])))
        if threshold:
            row.append(str(bool(scores[index] > threshold["threshold"])).lower())
        writer.writerow(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text.getvalue())


@torch.no_grad()
def _draw_top(path: Path, model, samples, rows) -> Path | None:
    """The inputs ``rows`` (most anomalous first) in rows of up to 16, each row over the row of their
    reconstructions; None for data that is not images."""
    if len(model.data_shape) != 3 or not len(rows):
        return None
    from zoo.core.image_grid import save_grid

    device = next(model.parameters()).device
    x = as_float(samples[torch.from_numpy(np.sort(rows))]).to(device)
    x = x[torch.from_numpy(np.argsort(np.argsort(rows)))]  # back into the order of the scores
    x_hat = model.reconstruct(x).float()
    columns = min(16, len(rows))
    pairs = []
    for i in range(0, len(rows), columns):
        chunk = slice(i, i + columns)
        blank = torch.ones(columns - len(x[chunk]), *x.shape[1:], device=device)
        pairs += [torch.cat([x[chunk], blank]), torch.cat([x_hat[chunk], blank])]
    return save_grid(path, torch.cat(pairs).cpu().numpy(), columns=columns)
