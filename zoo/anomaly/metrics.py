"""How well a score separates anomalies from normal inputs, and where to draw the line: the AUROC,
the average precision and a threshold at a false-positive rate. numpy only, so the benchmark, the
command line and an app without torch compute them the same way.

Higher scores mean "more anomalous" throughout; the anomalies are the positive class.
"""

import numpy as np


def _checked(scores, is_anomaly) -> tuple:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_anomaly = np.asarray(is_anomaly, dtype=bool).reshape(-1)
    if scores.shape != is_anomaly.shape:
        raise ValueError(f"{len(scores)} scores but {len(is_anomaly)} labels")
    if not np.isfinite(scores).all():
        raise ValueError("the scores hold NaN or infinite values")
    if is_anomaly.all() or not is_anomaly.any():
        raise ValueError("the AUROC needs both normal inputs and anomalies")
    return scores, is_anomaly


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Each run of equal values [start, end) gets the rank (start + 1 + end) / 2.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def auroc(scores, is_anomaly) -> float:
    """The area under the ROC curve: the probability that an anomaly scores above a normal input,
    ties counting one half (the Mann-Whitney U statistic over the product of the class sizes)."""
    scores, is_anomaly = _checked(scores, is_anomaly)
    positives, negatives = int(is_anomaly.sum()), int((~is_anomaly).sum())
    rank_sum = midranks(scores)[is_anomaly].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(scores, is_anomaly) -> float:
    """The precision averaged over the recall steps, one step per distinct score from the highest
    down: sum over thresholds of (recall gained) x (precision there), as scikit-learn defines it."""
    scores, is_anomaly = _checked(scores, is_anomaly)
    order = np.argsort(-scores, kind="mergesort")
    ordered, hits = scores[order], is_anomaly[order]
    last_of_each = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    true_positives = np.cumsum(hits)[last_of_each]
    flagged = last_of_each + 1
    precision = true_positives / flagged
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def threshold_at_fpr(normal_scores, fpr: float) -> float:
    """The score above which at most a fraction ``fpr`` of these normal inputs lie: inputs scoring
    strictly above it are flagged anomalous."""
    normal_scores = np.asarray(normal_scores, dtype=np.float64).reshape(-1)
    if not len(normal_scores):
        raise ValueError("no normal scores to set a threshold from")
    if not 0 <= fpr < 1:
        raise ValueError(f"the false-positive rate must lie in [0, 1), not {fpr}")
    return float(np.quantile(normal_scores, 1 - fpr, method="higher"))
