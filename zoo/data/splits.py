"""The splits the training loop and evaluation take batches from, and where they live.

A split is one array of samples (uint8 images, or float32 vectors); a batch is an index slice of it,
never per-sample Python. A split that fits the memory budget is copied into RAM (and moved to the
training device). A larger one stays a memory-mapped file (``MappedSplit``): each batch is gathered
from it in sorted index order, so the reads run forwards through the file, then put back into the
order the training RNG chose. The batches are the same either way, so a run trained from a mapped
split equals one trained from RAM, and ``--resume`` stays bit-identical.

No torch at import time: the plugins that build ``Splits`` load with `zoo list`.
"""

import os
from dataclasses import dataclass, field

MEMORY_FRACTION = 0.5  # the default budget: this fraction of the memory available when the run starts


@dataclass
class Splits:
    train: object  # uint8 [N, *data_shape] for images, float32 otherwise (a tensor, an array or a MappedSplit)
    test: object
    train_labels: object = None
    test_labels: object = None
    source: str = ""  # where the data came from, for messages and config.json
    # What config.json records about data given by path (path, fingerprint, preprocessing, split,
    # label names, files left out); {} for a registered dataset.
    info: dict = field(default_factory=dict)


def as_float(batch):
    """A batch as float32 in the model's range: uint8 pixels become [0, 1]."""
    import torch

    if batch.dtype == torch.uint8:
        return batch.float().div_(255.0)
    return batch.float()


class MappedSplit:
    """Rows ``rows`` (sorted) of an array that stays on disk (a read-only ``np.memmap``). Indexing
    with a slice or an index tensor gathers those rows into a tensor on ``device``."""

    def __init__(self, array, rows=None, device="cpu"):
        import numpy as np

        self.array = array
        self.rows = np.arange(len(array)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.device = device

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple:
        return (len(self.rows), *self.array.shape[1:])

    @property
    def nbytes(self) -> int:
        return len(self.rows) * self.array[:1].nbytes

    @property
    def dtype(self):
        import torch

        return torch.from_numpy(self.array[:0].copy()).dtype

    def to(self, device) -> "MappedSplit":
        return MappedSplit(self.array, self.rows, device)

    def head(self, n: int) -> "MappedSplit":
        return MappedSplit(self.array, self.rows[:n], self.device)

    def __getitem__(self, index):
        import numpy as np
        import torch

        if isinstance(index, slice):
            return self._to_device(self.array[self.rows[index]])  # rows are sorted: a forward read
        if isinstance(index, (int, np.integer)) or (torch.is_tensor(index) and index.dim() == 0):
            return self._to_device(np.array(self.array[self.rows[int(index)]]))  # one sample, as a tensor's
        wanted = index.cpu().numpy() if torch.is_tensor(index) else np.asarray(index)
        order = np.argsort(wanted, kind="stable")
        gathered = self.array[self.rows[wanted[order]]]
        batch = np.empty_like(gathered)
        batch[order] = gathered  # back into the order asked for
        return self._to_device(batch)

    def _to_device(self, array):
        import torch

        return torch.from_numpy(array).to(self.device)

    def in_memory(self):
        """The whole split as one tensor on the device."""
        return self[:]


def available_memory() -> int:
    """Bytes of memory available now (Linux's MemAvailable; the physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_budget(setting: int) -> int:
    """The bytes one split may take in RAM: ``setting`` when positive (``--set memory_budget=N``),
    else a fraction of the memory available now."""
    return setting if setting > 0 else int(MEMORY_FRACTION * available_memory())


def place_split(value, device, budget: int):
    """One split on ``device``: a tensor as it is; an array or a MappedSplit copied into memory when it
    fits the budget, else (a memory-mapped file) left on disk as a MappedSplit."""
    import numpy as np
    import torch

    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, np.ndarray):
        if isinstance(value, np.memmap) and value.nbytes > budget:
            return MappedSplit(value, device=device)
        return torch.from_numpy(np.ascontiguousarray(value)).to(device)
    if value.nbytes > budget:
        return value.to(device)
    return value.to(device).in_memory()


def labels_tensor(labels):
    """Labels as an int64 tensor on the CPU (None stays None)."""
    import torch

    if labels is None or torch.is_tensor(labels):
        return labels
    import numpy as np

    return torch.from_numpy(np.asarray(labels, dtype=np.int64))


def head(value, n: int):
    """The first ``n`` samples of a split or its labels (a tensor, an array or a MappedSplit)."""
    if value is None:
        return None
    return value.head(n) if isinstance(value, MappedSplit) else value[:n]


def spread_rows(count: int, n: int, seed: int = 0):
    """Sorted indices of ``n`` of ``count`` rows drawn with ``seed`` (all of them when n >= count): a
    sample of the whole split, where its first rows may all be one class (a folder sorted by label)."""
    import numpy as np

    if n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, n, replace=False))


def fraction_split(count: int, test_fraction: float, seed: int):
    """Sorted row indices (train, test) of ``count`` samples: a seeded draw of ``test_fraction`` of them
    for the test split (at least one, leaving at least one to train on)."""
    import numpy as np

    from zoo.core.errors import ZooUsageError

    if not 0 < test_fraction < 1:
        raise ZooUsageError(f"--test-fraction must lie between 0 and 1, not {test_fraction}")
    if count < 2:
        raise ZooUsageError(f"{count} usable sample(s): a training and a test split need at least 2")
    n_test = min(count - 1, max(1, round(count * test_fraction)))
    shuffled = np.random.default_rng(seed).permutation(count)
    return np.sort(shuffled[n_test:]), np.sort(shuffled[:n_test])
