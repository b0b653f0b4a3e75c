"""Which samples a run treats as normal: the labels it trains on (``zoo train --labels``) and the
part of its training split held out to set the anomaly threshold on.

Labels are named as a user sees them: a folder's subfolder names, else the label values as text
(MNIST's "0" to "9", an npz's ``y_train`` values). Both selections keep the splits as they are
stored (tensors, or memory-mapped rows), so batches stay index slices.
"""

import torch

from zoo.core.errors import ZooUsageError
from zoo.data.splits import MappedSplit, fraction_split

HOLDOUT_SEED = 1  # fixed, whatever the training seed: runs with other seeds hold out the same samples


def label_names(splits) -> dict:
    """``{name: label value}`` of the data's labels ({} when it has none)."""
    if splits.train_labels is None and splits.test_labels is None:
        return {}
    names = splits.info.get("label_names") or []
    if splits.info.get("kind") == "folder" and names:
        return {str(name): value for value, name in enumerate(names)}
    present = [labels for labels in (splits.train_labels, splits.test_labels) if labels is not None]
    values = torch.unique(torch.cat([torch.as_tensor(v).reshape(-1).cpu() for v in present]))
    return {str(int(v)): int(v) for v in values}


def label_values(splits, names, what: str, where: str) -> list:
    """The values of the labels ``names``; one line naming what is wrong when the data has no labels
    or a name is not one of them. ``what``: the option (--labels, --normal); ``where``: the data."""
    known = label_names(splits)
    if not known:
        raise ZooUsageError(
            f"{what}: {where} has no labels (a folder needs one subfolder per label, an .npz y_train and y_test)"
        )
    unknown = [name for name in names if str(name) not in known]
    if unknown:
        listed = ", ".join(list(known)[:20]) + (", ..." if len(known) > 20 else "")
        raise ZooUsageError(f"{what} {unknown[0]}: no such label in {where}; its labels are {listed}")
    return [known[str(name)] for name in names]


def take(split, rows: torch.Tensor):
    """The rows ``rows`` (sorted int64) of a split or its labels, stored as the split is."""
    if split is None:
        return None
    if isinstance(split, MappedSplit):
        return MappedSplit(split.array, split.rows[rows.numpy()], split.device)
    return split[rows.to(split.device)] if torch.is_tensor(split) else split[rows.numpy()]


def keep_labels(splits, names, where: str):
    """The splits restricted to the samples of the labels ``names`` (both splits, so that the test
    loss measures the same kind of data the run trains on)."""
    values = torch.tensor(label_values(splits, names, "--labels", where))
    for part in ("train", "test"):
        labels = getattr(splits, f"{part}_labels")
        if labels is None:
            raise ZooUsageError(f"--labels: the {part} split of {where} has no labels")
        rows = torch.nonzero(torch.isin(labels.cpu(), values)).flatten()
        if not len(rows):
            raise ZooUsageError(
                f"--labels {' '.join(map(str, names))}: the {part} split of {where} has no such samples"
            )
        setattr(splits, part, take(getattr(splits, part), rows))
        setattr(splits, f"{part}_labels", take(labels, rows))
    return splits


def hold_out(splits, fraction: float):
    """(the splits without the held-out rows of the training split, those rows as a split): a seeded
    ``fraction`` of the training split, which training never sees; (splits, None) for fraction 0 or a
    split of one sample."""
    if fraction == 0:
        return splits, None
    if not 0 < fraction < 1:
        raise ZooUsageError(f"score_holdout must lie in [0, 1), not {fraction}")
    if len(splits.train) < 2:
        return splits, None  # nothing to spare: such a run gets no threshold
    kept, held = (torch.from_numpy(rows) for rows in fraction_split(len(splits.train), fraction, HOLDOUT_SEED))
    held_out = take(splits.train, held)
    splits.train, splits.train_labels = take(splits.train, kept), take(splits.train_labels, kept)
    return splits, held_out
