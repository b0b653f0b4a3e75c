"""The splits of a dataset loaded onto a device, shared by training, evaluation and scoring: the test
split binarized once when the run binarizes, and the batch size of no-gradient passes."""

import torch

from zoo.core.errors import ZooUsageError

EVAL_BATCH = 1000  # samples per no-gradient batch (test loss, prior fit, zoo eval)


def check_unit_range(data, name: str) -> None:
    """Binarizing reads pixel values as probabilities, so they must lie in [0, 1] (or be uint8)."""
    if data.dtype != torch.uint8 and not bool((data.min() >= 0) & (data.max() <= 1)):
        raise ZooUsageError(f"binarize=dynamic needs data in [0, 1] (Bernoulli probabilities); {name} is not")


def binarize_fixed(data: torch.Tensor, seed: int) -> torch.Tensor:
    """One Bernoulli(intensity) draw of a whole split from its own generator on the CPU, so the draw
    is the same on every device and for every subset. uint8 pixels stay uint8 (0 or 255)."""
    generator = torch.Generator().manual_seed(seed)
    probs = data.float().div(255.0) if data.dtype == torch.uint8 else data.float()
    binary = torch.bernoulli(probs, generator=generator)
    return binary.mul_(255).to(torch.uint8) if data.dtype == torch.uint8 else binary.to(data.dtype)


def load_splits(
    data_spec,
    data_dir,
    subset: int,
    device,
    binarize_test_seed=None,
    request=None,
    memory_budget: int = 0,
    progress: bool = False,
):
    """The splits of a registered dataset (``data_spec``) or of data by path (``request``, a
    ``zoo.data.by_path.DataRequest``) on ``device``: each in RAM when it fits ``memory_budget`` bytes
    (0: a fraction of the available memory), else memory-mapped (``zoo.data.splits``). With
    ``binarize_test_seed`` the test split is binarized once (before any subset is taken) and the
    training split is checked to be binarizable; a callable ``binarize_test_seed`` is asked for the seed
    (or None) with the whole training split, before anything is placed or binarized."""
    from zoo.data import load
    from zoo.data.splits import head, labels_tensor, place_split
    from zoo.data.splits import memory_budget as budget_of

    if request is not None:
        from zoo.data.by_path import open_path

        splits, name = open_path(request, progress=progress), request.path
    else:
        splits, name = load(data_spec, data_dir), data_spec.name
    if callable(binarize_test_seed):  # decided from the training split (zoo.train.data_defaults)
        binarize_test_seed = binarize_test_seed(splits.train)
    budget = budget_of(memory_budget)
    if subset:
        splits.train, splits.train_labels = head(splits.train, subset), head(splits.train_labels, subset)
    splits.train = place_split(splits.train, device, budget)
    if binarize_test_seed is not None:
        # The whole test split, binarized in memory, then its subset: the same draw for every subset.
        check_unit_range(splits.train, name)
        test = place_split(splits.test, "cpu", float("inf"))
        check_unit_range(test, name)
        splits.test = binarize_fixed(test, binarize_test_seed)
    if subset:
        splits.test, splits.test_labels = head(splits.test, subset), head(splits.test_labels, subset)
    splits.test = place_split(splits.test, device, budget)
    splits.train_labels, splits.test_labels = labels_tensor(splits.train_labels), labels_tensor(splits.test_labels)
    return splits
