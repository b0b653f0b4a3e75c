"""The importance-weighted estimate of log p(x) (Burda, Grosse and Salakhutdinov, 2015):

    log p(x) ~= logsumexp_j [log p(x|z_j) + log p(z_j) - log q(z_j|x)] - log k,   z_j ~ q(z|x)

for any model whose ``log_importance_weights(x, k)`` gives the bracket. The estimate is a lower
bound in expectation that tightens as k grows. The work runs over images x samples in chunks sized
from a memory budget, so k = 5000 over the whole test split never holds more than one chunk.
"""

import math
import resource
import time
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .data import as_float
from .errors import ZooError

# Bytes of new tensors one chunk may create on the CPU: small enough that a chunk's matmul outputs
# and the elementwise passes over them stay in the last-level cache (1 GiB chunks ran about 1.5x slower).
CPU_BUDGET = 32 << 20
GPU_BUDGET_FRACTION = 0.25  # of the free GPU memory
PROBE_SAMPLES = 8  # draws of one image used to measure the bytes one (image, sample) pair costs


class _CountBytes(TorchDispatchMode):
    """Sums the bytes of every tensor the ops create: an upper bound on the peak, since a
    no-gradient pass frees most intermediates as it goes."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Views (a weight's transpose, a reshape) share their input's memory: count new storage only.
        inputs = {a.untyped_storage().data_ptr() for a in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(a, torch.Tensor)}
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                self.bytes += t.numel() * t.element_size()
        return out


@torch.no_grad()
def bytes_per_pair(model, x_one: torch.Tensor) -> int:
    with _CountBytes() as counter:
        model.log_importance_weights(x_one, PROBE_SAMPLES)
    return max(1, math.ceil(counter.bytes / PROBE_SAMPLES))


def memory_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * GPU_BUDGET_FRACTION)
    return CPU_BUDGET


@dataclass
class Chunking:
    images: int  # images per chunk
    samples: int  # draws per call of log_importance_weights
    pair_bytes: int  # measured cost of one (image, sample) pair
    budget: int  # bytes


def plan_chunks(model, x_one, k: int, budget: int) -> Chunking:
    """All k draws of several images at once when they fit the budget, else k split over calls."""
    pair_bytes = bytes_per_pair(model, x_one)
    pairs = max(1, budget // pair_bytes)
    if pairs >= k:
        return Chunking(images=pairs // k, samples=k, pair_bytes=pair_bytes, budget=budget)
    return Chunking(images=1, samples=pairs, pair_bytes=pair_bytes, budget=budget)


def check_has_likelihood(model, name: str) -> None:
    if not getattr(model, "has_likelihood", False):
        raise ZooError(f"{name} has no likelihood: --nll needs a model that implements log_importance_weights")


@torch.no_grad()
def log_likelihoods(model, data: torch.Tensor, k: int, chunking: Chunking, progress: bool = False) -> torch.Tensor:
    """Per-image estimates of log p(x) in nats, float64 [N]. ``data``: the (binarized) images."""
    bar = None
    if progress:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, CI).
        bar = tqdm(total=len(data), unit="image", leave=False, dynamic_ncols=True, disable=None)
    out = []
    for start in range(0, len(data), chunking.images):
        x = as_float(data[start : start + chunking.images])
        parts = []
        for done in range(0, k, chunking.samples):
            parts.append(model.log_importance_weights(x, min(chunking.samples, k - done)).double())
        log_w = torch.cat(parts, dim=1)
        if not torch.isfinite(log_w).all():
            raise ZooError(f"non-finite importance weights for images {start}..{start + len(x) - 1}; "
                           "the model's log_importance_weights returned inf or nan")
        out.append(torch.logsumexp(log_w, dim=1) - math.log(k))
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.close()
    return torch.cat(out).cpu()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def estimate_nll(model, data, k: int = 5000, *, seed: int = 0, budget: int | None = None,
                 progress: bool = False) -> dict:
    """Mean negative log-likelihood (nats per image) of ``data`` with k importance samples, its
    standard error over images, and what the estimate cost (seconds, chunking, peak memory)."""
    if k < 1:
        raise ZooError(f"--iw-samples must be at least 1, not {k}")
    if len(data) == 0:
        raise ZooError("no test images to evaluate")
    device = next(model.parameters()).device
    model.eval()
    torch.manual_seed(seed)  # the draws z_j are repeatable
    chunking = plan_chunks(model, as_float(data[:1]), k, budget or memory_budget(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    log_px = log_likelihoods(model, data, k, chunking, progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    nll = -log_px
    return {
        "nll": float(nll.mean()),
        "nll_stderr": float(nll.std() / math.sqrt(len(nll))) if len(nll) > 1 else float("nan"),
        "iw_samples": k,
        "test_images": len(nll),
        "seconds": seconds,
        "images_per_second": len(nll) / seconds if seconds > 0 else float("inf"),
        "chunk_images": chunking.images,
        "chunk_samples": chunking.samples,
        "chunk_budget_bytes": chunking.budget,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "seed": seed,
    }
