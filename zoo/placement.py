"""Where work runs, shared by training and evaluation: the device, the splits loaded onto it, and
the batch size of no-gradient passes over a split."""

import torch

from .errors import ZooUsageError

EVAL_BATCH = 1000  # samples per no-gradient batch (test loss, prior fit, zoo eval)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ZooUsageError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ZooUsageError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def load_splits(data_spec, data_dir, subset: int, device):
    from .data import load

    splits = load(data_spec, data_dir)
    if subset:
        for field in ("train", "test", "train_labels", "test_labels"):
            value = getattr(splits, field)
            if value is not None:
                setattr(splits, field, value[:subset])
    splits.train = splits.train.to(device)
    splits.test = splits.test.to(device)
    return splits
