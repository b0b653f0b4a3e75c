"""The importance-weighted estimate of log p(x) (Burda, Grosse and Salakhutdinov, 2015):

    log p(x) ~= logsumexp_j [log p(x|z_j) + log p(z_j) - log q(z_j|x)] - log k,   z_j ~ q(z|x)

for any model whose ``log_importance_weights(x, k)`` gives the bracket. The estimate is a lower
bound in expectation that tightens as k grows. The work runs over images x samples in chunks bounded
by a memory budget, so k = 5000 over the whole test split never holds more than one chunk. Within the
budget the chunk is timed, not guessed: the fastest size depends on the model, the cache and the
allocator (on a 2-core Xeon the MLP VAE's best ran from 500 to 5,000 draws per call as conditions
changed, about 30% apart from the worst; the conv VAE's was about 200).
"""

import math
import resource
import time
from dataclasses import dataclass, replace

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from zoo.core.errors import ZooError
from zoo.data import as_float

CPU_BUDGET = 64 << 20  # bytes of new tensors one chunk may create on the CPU, at most
GPU_BUDGET_FRACTION = 0.25  # of the free GPU memory
PROBE_SAMPLES = 8  # draws of one image used to measure the bytes one (image, sample) pair costs
# Chunk sizes timed: the budget and TUNE_STEPS - 1 sizes below it, each 1/sqrt(2) of the one before
# (down to 1/16 of the budget). Each is timed TUNE_ROUNDS times, interleaved, and the fastest per
# pair wins; on the CPU the whole search costs a fraction of a second.
TUNE_STEPS = 9
TUNE_ROUNDS = 3


class _CountBytes(TorchDispatchMode):
    """Sums the bytes of every tensor the ops create: an upper bound on the peak, since a
    no-gradient pass frees most intermediates as it goes."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Views (a weight's transpose, a reshape) share their input's memory: count new storage only.
        inputs = {
            a.untyped_storage().data_ptr()
            for a in torch.utils._pytree.tree_leaves((args, kwargs))
            if isinstance(a, torch.Tensor)
        }
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
    return chunks_within(bytes_per_pair(model, x_one), k, budget)


def chunks_within(pair_bytes: int, k: int, budget: int) -> Chunking:
    """All k draws of several images at once when they fit the budget, else k split evenly over calls."""
    pairs = max(1, budget // pair_bytes)
    if pairs >= k:
        return Chunking(images=pairs // k, samples=k, pair_bytes=pair_bytes, budget=budget)
    calls = math.ceil(k / pairs)  # 1000 draws in 804s would leave a slow 196-draw call
    return Chunking(images=1, samples=math.ceil(k / calls), pair_bytes=pair_bytes, budget=budget)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def fastest_chunks(model, data: torch.Tensor, k: int, budget: int, clock=time.perf_counter) -> Chunking:
    """The chunking, among the budget and sizes below it, whose calls cost the least time per pair.

    It draws random numbers: call it before seeding the estimate."""
    device = next(model.parameters()).device
    pair_bytes = bytes_per_pair(model, as_float(data[:1]))
    plans = {}
    for step in range(TUNE_STEPS):
        plan = chunks_within(pair_bytes, k, max(1, int(budget / 2 ** (step / 2))))
        plan = replace(plan, images=min(plan.images, len(data)))  # more images than there are: the same call
        plans.setdefault((plan.images, plan.samples), plan)
    if len(plans) == 1:
        return next(iter(plans.values()))
    best = {shape: float("inf") for shape in plans}
    for _ in range(TUNE_ROUNDS):
        for images, samples in plans:
            x = as_float(data[:images])
            _sync(device)
            t0 = clock()
            model.log_importance_weights(x, samples)
            _sync(device)
            best[images, samples] = min(best[images, samples], (clock() - t0) / (len(x) * samples))
    return plans[min(best, key=best.get)]


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
            raise ZooError(
                f"non-finite importance weights for images {start}..{start + len(x) - 1}; "
                "the model's log_importance_weights returned inf or nan"
            )
        out.append(torch.logsumexp(log_w, dim=1) - math.log(k))
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.close()
    return torch.cat(out).cpu()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def estimate_nll(
    model, data, k: int = 5000, *, seed: int = 0, budget: int | None = None, tune: bool = True, progress: bool = False
) -> dict:
    """Mean negative log-likelihood (nats per image) of ``data`` with k importance samples, its
    standard error over images, and what the estimate cost (seconds, chunking, peak memory).

    ``tune``: time chunk sizes within the budget and use the fastest; off, the whole budget is used,
    so the chunk shape, and with it the draws, depend only on the budget."""
    if k < 1:
        raise ZooError(f"--iw-samples must be at least 1, not {k}")
    if len(data) == 0:
        raise ZooError("no test images to evaluate")
    device = next(model.parameters()).device
    model.eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    t0 = time.perf_counter()  # the search for a chunk size is part of the cost
    budget = budget or memory_budget(device)
    chunking = fastest_chunks(model, data, k, budget) if tune else plan_chunks(model, as_float(data[:1]), k, budget)
    # The draws z_j repeat for a given seed and chunk shape; the report gives the shape.
    torch.manual_seed(seed)
    log_px = log_likelihoods(model, data, k, chunking, progress)
    _sync(device)
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
