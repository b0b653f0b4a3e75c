"""Anomaly scores of a model over a split, and the threshold set on held-out normal samples at the
end of training. The score is the model's own (``AutoEncoder.score``); nothing here knows which
model it scores."""

import math
import sys

import numpy as np
import torch

from zoo.data import as_float
from zoo.data.loading import EVAL_BATCH


@torch.no_grad()
def score_split(model, split, progress: bool = False) -> np.ndarray:
    """float64 [N]: the model's score of each sample of ``split``, in batches of EVAL_BATCH, with a
    progress bar when asked (and stderr is a terminal)."""
    was_training = model.training
    model.eval()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(split), unit="sample", leave=False, dynamic_ncols=True, disable=None, desc="scoring")
    scores = []
    device = next(model.parameters()).device
    for i in range(0, len(split), EVAL_BATCH):
        x = as_float(split[i : i + EVAL_BATCH]).to(device)
        scores.append(model.score(x).double().cpu())
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.close()
    model.train(was_training)
    return torch.cat(scores).numpy() if scores else np.zeros(0)


def order_statistic_threshold(scores, fpr: float) -> tuple:
    """(the threshold, its expected false-positive rate on new normal inputs). A new input from
    the same distribution exceeds the k-th smallest of n scores with probability (n + 1 - k) / (n + 1),
    so k = ceil((n + 1)(1 - fpr)) gives at most ``fpr``; with fewer than 1/fpr - 1 samples no k does,
    and the largest score (k = n, expected rate 1 / (n + 1)) is the best there is."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    n = len(ordered)
    if not n:
        raise ValueError("no normal scores to set a threshold from")
    k = min(n, max(1, math.ceil((n + 1) * (1 - fpr) - 1e-9)))
    return float(ordered[k - 1]), (n + 1 - k) / (n + 1)


def fit_threshold(model, held_out, fpr: float, holdout: float) -> dict:
    """threshold.json's record: the threshold above which a fraction ``fpr`` of the held-out normal
    samples' scores lie, with what it rests on."""
    scores = score_split(model, held_out)
    threshold, expected = order_statistic_threshold(scores, fpr)
    if expected > fpr:
        print(
            f"warning: only {len(scores):,} held-out normal samples: the threshold is their largest score, which "
            f"new normal inputs exceed with probability {expected:.3g}, not {fpr:g}; hold out more "
            "(--set score_holdout=...) or ask for a larger score_fpr",
            file=sys.stderr,
        )
    return {
        "definition": model.score_definition,
        "threshold": threshold,
        "fpr": fpr,
        "expected_fpr": expected,
        "held_out_samples": len(scores),
        "held_out_fraction": holdout,
        "held_out_fpr": float(np.mean(scores > threshold)),
        "held_out_score_quantiles": {str(q): float(np.quantile(scores, q)) for q in (0.5, 0.9, 0.99)},
    }
