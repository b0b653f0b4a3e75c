"""Where work runs, shared by training and evaluation: the device, the splits loaded onto it (the
test split binarized once, when the run binarizes), and the batch size of no-gradient passes."""

import torch

from .errors import ZooUsageError

EVAL_BATCH = 1000  # samples per no-gradient batch (test loss, prior fit, zoo eval)


def flush_denormals() -> None:
    """Treat denormal floats (below 1.2e-38) as zero in this process's CPU arithmetic. Weights and
    activations drift into that range as training goes on, and x86 handles them many times slower:
    conv-vae's epochs went from 51 s to 96 s over 20 epochs, and a step ran 2.2x faster once they
    were flushed. Numbers that small change no loss or likelihood."""
    torch.set_flush_denormal(True)  # a no-op returning False where the CPU cannot


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ZooUsageError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ZooUsageError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def check_unit_range(data: torch.Tensor, name: str) -> None:
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


def load_splits(data_spec, data_dir, subset: int, device, binarize_test_seed: int | None = None):
    """The dataset's splits on ``device``; with ``binarize_test_seed`` the test split is binarized
    once (before any subset is taken) and the training split is checked to be binarizable."""
    from .data import load

    splits = load(data_spec, data_dir)
    if binarize_test_seed is not None:
        check_unit_range(splits.train, data_spec.name)
        check_unit_range(splits.test, data_spec.name)
        splits.test = binarize_fixed(splits.test, binarize_test_seed)
    if subset:
        for field in ("train", "test", "train_labels", "test_labels"):
            value = getattr(splits, field)
            if value is not None:
                setattr(splits, field, value[:subset])
    splits.train = splits.train.to(device)
    splits.test = splits.test.to(device)
    return splits
