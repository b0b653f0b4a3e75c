"""The ``zoo.*`` metadata of exported ONNX files: this module owns the format.

Every file ``zoo export`` writes carries these string entries in its ``metadata_props``:

- ``zoo.model``, ``zoo.part`` ("encoder", "decoder", "generator" or "scorer"), ``zoo.dataset``, ``zoo.version``:
  plain text;
- ``zoo.data_shape``, ``zoo.latent_shape``: JSON lists of positive ints, without the batch;
- ``zoo.config``: JSON, the model's settings;
- ``zoo.prior``: JSON, the latent prior (below).

The prior is ``{"kind", "mean", "std"}`` plus, depending on the part: ``scale_tril`` in the decoder
(the one part sampled from its metadata, so the one that needs the full covariance) and
``"folded_into_graph": true`` in the generator (whose graph applies the prior itself). ``kind`` is
"standard_normal" (a VAE's fixed N(0, I)) or "gaussian" (fitted to a deterministic autoencoder's
training codes); ``mean`` and ``std`` have one entry per latent dimension; ``scale_tril`` is the
lower Cholesky factor of the covariance. The generator's may add ``noise_dim``, the width of its
N(0, I) input when that is not the latent size (a model that samples a mixture component or a code
grid takes extra noise; ``zoo.models.base.AutoEncoder.noise_dim``). A prior that is a Gaussian
mixture (kind "gaussian_mixture") gives the moment-matched Gaussian's ``mean``, ``std`` and
``scale_tril`` (what the decoder's metadata sampler draws from) and its ``components``.
``zoo.models.base.GaussianPrior.describe()`` produces the full description (the core cannot
import this package); everything else about the schema is here.

Optional (files written before it existed lack it): ``zoo.preprocess``, JSON, how an image is
prepared for the encoder as the training data was, for models of images (C, H, W):

    {"size": [H, W], "channels": 1 or 3, "crop": [h, w] or null,
     "resize": "bilinear-antialiased", "scale": "x / 255", "layout": "NCHW"}

An image goes to 8 bits and to ``channels`` (1: L, 3: RGB; alpha dropped), is centre-cropped to
``crop`` (or, when null, to the largest box of ``size``'s aspect), resized to ``size`` with an
antialiased bilinear filter, and its uint8 pixels divided by 255 into float32 [C, H, W].
``zoo.data.image_files.prepare`` is the reference implementation; ``runtime.Encoder.encode_images``
applies it. ``preprocess_for`` makes the entry from what a run recorded.

Optional, in ``scorer.onnx`` only: ``zoo.score``, JSON, what its outputs mean:

    {"definition": "mean squared reconstruction error per element", "threshold": 0.0123,
     "fpr": 0.01, "held_out_samples": 2850}

``score`` [batch] is the model's anomaly score (higher: less like the training data) as
``definition`` says; ``anomalous`` [batch] is ``score > threshold``, the threshold that a fraction
``fpr`` of ``held_out_samples`` normal training samples, never trained on, scored above.
``score_for`` makes the entry from a run's threshold.json record.

Optional: ``zoo.data_defaults``, JSON, what the training data decided (``zoo.train.data_defaults``):

    {"data": "8-bit", "why": "colour images", "likelihood": "logistic", "binarize": "none",
     "set_by_user": [], "min_steps": 1000}

The exporter writes with ``build``; ``zoo.export.runtime`` and ``zoo serve`` read with ``parse`` and
``zoo_entries``, and sample the prior with ``prior_sample``. Plain Python and numpy only: the
runtime and the server load this module without torch or onnx.
"""

import json
from collections.abc import Mapping

import numpy as np

from zoo.core.errors import ZooError

KEYS = (
    "zoo.model",
    "zoo.part",
    "zoo.data_shape",
    "zoo.latent_shape",
    "zoo.prior",
    "zoo.config",
    "zoo.dataset",
    "zoo.version",
)
JSON_KEYS = ("zoo.data_shape", "zoo.latent_shape", "zoo.prior", "zoo.config")
SHAPE_KEYS = ("zoo.data_shape", "zoo.latent_shape")
PREPROCESS = "zoo.preprocess"  # optional: only models of images carry it
SCORE = "zoo.score"  # optional: only the scorer carries it
DATA_DEFAULTS = "zoo.data_defaults"  # optional: runs since the data decided the likelihood
SCORE_KEYS = ("definition", "threshold", "fpr", "held_out_samples")


def build(
    *,
    model: str,
    part: str,
    data_shape,
    latent_shape,
    prior: dict,
    config: dict,
    dataset: str,
    version: str,
    preprocess: dict | None = None,
    score: dict | None = None,
    data_defaults: dict | None = None,
) -> dict:
    """The ``metadata_props`` of one exported file, ``{key: text}`` in KEYS order (then
    ``zoo.preprocess`` when given); ``prior`` is what this part carries (``prior_for_part``)."""
    values = {
        "zoo.model": model,
        "zoo.part": part,
        "zoo.data_shape": list(data_shape),
        "zoo.latent_shape": list(latent_shape),
        "zoo.prior": prior,
        "zoo.config": config,
        "zoo.dataset": dataset,
        "zoo.version": version,
    }
    props = {key: json.dumps(value) if key in JSON_KEYS else value for key, value in values.items()}
    if preprocess is not None:
        props[PREPROCESS] = json.dumps(preprocess)
    if score is not None:
        props[SCORE] = json.dumps(score)
    if data_defaults is not None:
        props[DATA_DEFAULTS] = json.dumps(data_defaults)
    return props


def score_for(record: dict) -> dict:
    """``zoo.score`` from a run's threshold record (``zoo.train.run_folder.read_threshold``)."""
    return {key: record[key] for key in SCORE_KEYS if key in record}


def preprocess_for(data_shape, recorded: dict | None = None) -> dict | None:
    """``zoo.preprocess`` for a model of ``data_shape``: the size, channels and crop a run recorded
    for data given by path (config.json's data.preprocess), else those of the shape itself (an IDX
    dataset's 28x28 grey digits); None for data that is not images."""
    if len(data_shape) != 3 or data_shape[0] not in (1, 3):
        return None
    recorded = recorded or {}
    return {
        "size": list(data_shape[1:]),
        "channels": data_shape[0],
        "crop": recorded.get("crop"),
        "resize": "bilinear-antialiased",
        "scale": "x / 255",
        "layout": "NCHW",
    }


def prior_for_part(prior: dict, part: str) -> dict:
    """What ``zoo.prior`` holds in one part's file, from the full description."""
    if part == "decoder":
        return prior
    # The generator folds scale_tril into its graph and an encoder does not sample, so only the
    # decoder (sampled from its metadata) carries the full covariance factor.
    summary = {key: value for key, value in prior.items() if key != "scale_tril"}
    return {**summary, "folded_into_graph": True} if part == "generator" else summary


def parse(raw: Mapping, where) -> dict:
    """A file's metadata map (onnxruntime's ``custom_metadata_map``) with the JSON values parsed and
    the shapes checked; one ZooError, prefixed with ``where`` (the file), naming the first key that
    is missing or malformed. Entries that are not ``zoo.*`` are kept as they are."""
    missing = [key for key in KEYS if key not in raw]
    if missing:
        raise ZooError(
            f"{where}: not an autoencoder-zoo artifact (no {missing[0]} metadata); write one with `zoo export RUN`"
        )
    meta = dict(raw)
    for key in JSON_KEYS + tuple(key for key in (PREPROCESS, SCORE) if key in raw):
        meta[key] = _parse_json(raw[key], key, where)
    for key in SHAPE_KEYS:
        _check_shape(meta[key], key, where)
    return meta


def _parse_json(text: str, key: str, where):
    try:
        return json.loads(text)
    except ValueError:
        raise ZooError(f"{where}: corrupt {key} metadata (not JSON)") from None


def _check_shape(shape, key: str, where) -> None:
    # Arrays are sized from these shapes: anything but positive ints must stop here.
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise ZooError(f"{where}: corrupt {key} metadata {str(shape)[:80]} (expected a list of positive ints)")


def zoo_entries(raw: Mapping) -> dict:
    """The ``zoo.*`` entries of a metadata map as the text they are in the file (JSON unparsed): the
    required ones, then the optional ``zoo.preprocess`` (so that a client of the server knows how to
    prepare an image) and a scorer's ``zoo.score`` (so that it sees the threshold)."""
    return {key: raw[key] for key in (*KEYS, PREPROCESS, SCORE) if key in raw}


def prior_sample(prior: dict, eps: np.ndarray) -> np.ndarray:
    """Map N(0, I) draws to the prior described in ``zoo.prior``: mean + eps @ scale_tril.T (the
    fitted full covariance), or mean + std * eps when the file only carries per-dimension spreads."""
    mean = np.asarray(prior["mean"], dtype=np.float32)
    if prior.get("scale_tril") is not None:
        return mean + eps @ np.asarray(prior["scale_tril"], dtype=np.float32).T
    return mean + eps * np.asarray(prior["std"], dtype=np.float32)
