"""Anomaly scores of a model over a split, and the threshold set on held-out normal samples at the
end of training. The score is the model's own (``AutoEncoder.score``); nothing here knows which
model it scores."""

import numpy as np
import torch

from zoo.anomaly.metrics import threshold_at_fpr
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


def fit_threshold(model, held_out, fpr: float, holdout: float) -> dict:
    """threshold.json's record: the threshold above which a fraction ``fpr`` of the held-out normal
    samples' scores lie, with what it rests on."""
    scores = score_split(model, held_out)
    threshold = threshold_at_fpr(scores, fpr)
    return {
        "definition": model.score_definition,
        "threshold": threshold,
        "fpr": fpr,
        "held_out_samples": len(scores),
        "held_out_fraction": holdout,
        "held_out_fpr": float(np.mean(scores > threshold)),
        "held_out_score_quantiles": {str(q): float(np.quantile(scores, q)) for q in (0.5, 0.9, 0.99)},
    }
