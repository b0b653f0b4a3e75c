"""What the data is decides how a run models it, here and nowhere else.

A model's recipe (``ModelSpec.train``) was written for one dataset: conv-vae's binarizes MNIST
every step and fits a Bernoulli. On a user's photographs that turns every colour channel into coin
flips. So before a run starts, a seeded sample of its training split is looked at once:

- **binary-like** (one channel, or vectors, with nearly every value near 0 or 255, as MNIST's
  digits): the model's recipe stands (a Bernoulli likelihood, its binarization);
- **8-bit** (grey levels or colour spread over the range: photographs, Fashion-MNIST, arrays of
  pixels): no binarization, and the discretized logistic likelihood of 8-bit pixels for a model
  that has a ``likelihood`` setting;
- **not pixels** (floats outside [0, 1]): no binarization; the likelihood is left as it is.

A setting the user gave (``--set likelihood=...``, ``--set binarize=...``, a resumed run's saved
ones, a dataset's own such as mnist-binary's) always wins, and pulls the other to match: a logistic
likelihood is never trained on binarized pixels. The choice and why are printed at the start,
recorded in config.json (``data_defaults``) and in the exported files' metadata.

Data given by path also gets a budget of optimizer steps: a folder of 600 images is 5 steps an
epoch, and 100 epochs (500 steps) left a VAE far from trained. Without ``--epochs`` the run trains
for at least ``DATA_MIN_STEPS`` steps (``--set min_steps=N``; 0 turns it off).
"""

import numpy as np

SAMPLE_ROWS = 2000  # rows looked at, spread evenly over the training split
NEAR_EDGE = 25  # a value within this many grey levels of 0 or 255 counts as near an edge
BINARY_LIKE_SHARE = 0.85  # MNIST: 0.91 of its values near an edge; Fashion-MNIST: 0.61
DATA_MIN_STEPS = 1000


def sample_rows(train) -> np.ndarray:
    """Up to SAMPLE_ROWS rows spread evenly over a split (a tensor, an array or a MappedSplit), as numpy."""
    count = len(train)
    rows = np.unique(np.linspace(0, count - 1, min(count, SAMPLE_ROWS)).astype(np.int64))
    sample = train[rows]
    return sample.cpu().numpy() if hasattr(sample, "cpu") else np.asarray(sample)


def pixel_kind(sample: np.ndarray) -> tuple[str, str]:
    """("binary-like" | "8-bit" | "not pixels", why) for a sample of a split."""
    if sample.dtype == np.uint8:
        levels = sample
    elif sample.size and (sample.min() < 0 or sample.max() > 1):
        return "not pixels", f"values from {float(sample.min()):.3g} to {float(sample.max()):.3g}, not pixels in [0, 1]"
    else:
        levels = np.round(sample.astype(np.float64) * 255)
    near_edge = float(((levels <= NEAR_EDGE) | (levels >= 255 - NEAR_EDGE)).mean()) if levels.size else 1.0
    colour = sample.ndim == 4 and sample.shape[1] == 3
    if not colour and near_edge >= BINARY_LIKE_SHARE:
        return "binary-like", f"{near_edge:.0%} of its values lie near 0 or 255"
    what = "colour images" if colour else f"grey levels: only {near_edge:.0%} of its values lie near 0 or 255"
    return "8-bit", what


def decide(train, model_config, cfg, explicit: set, by_path: bool) -> dict:
    """Set ``cfg.binarize``, ``model_config.likelihood`` (where the model has one) and
    ``cfg.min_steps`` from the data, except what ``explicit`` names; returns the record of the choice."""
    kind, why = pixel_kind(sample_rows(train))
    has_likelihood = hasattr(model_config, "likelihood")
    likelihood = getattr(model_config, "likelihood", None)
    binarize = cfg.binarize
    if kind == "8-bit":
        likelihood, binarize = ("logistic" if has_likelihood else None), "none"
    elif kind == "not pixels":
        binarize = "none"
    if "likelihood" in explicit:
        likelihood = model_config.likelihood
    if "binarize" in explicit:
        binarize = cfg.binarize
    elif likelihood == "logistic":
        binarize = "none"  # a likelihood of 8-bit pixels trained on binarized ones would be wrong
    if binarize == "dynamic" and has_likelihood and "likelihood" not in explicit:
        likelihood = "bernoulli"
    cfg.binarize = binarize
    if has_likelihood:
        model_config.likelihood = likelihood
    if by_path and not explicit & {"epochs", "min_steps"}:
        cfg.min_steps = DATA_MIN_STEPS
    return {
        "data": kind,
        "why": why,
        "binarize": binarize,
        "likelihood": likelihood if has_likelihood else None,
        "set_by_user": sorted(explicit & {"likelihood", "binarize"}),
        "min_steps": cfg.min_steps,
    }


def describe(record: dict) -> str:
    """The line printed at the start of training."""
    likelihood = f"likelihood {record['likelihood']}, " if record["likelihood"] else ""
    chosen = f"set by you: {', '.join(record['set_by_user'])}" if record["set_by_user"] else "chosen from the data"
    return (
        f"data: {record['data']} ({record['why']}): {likelihood}binarize {record['binarize']} ({chosen}; "
        "--set likelihood=... / binarize=... to change)"
    )
