"""Real images through the folder route: MNIST's test digits (the first 2,000 of the real ones where
they are here, else the small set the tests generate) written out as PNG files, one folder per digit.
The folder route decodes exactly the bytes the IDX route reads (on worker processes: more than
PARALLEL_FROM files), and `zoo train --data` learns from it."""

import json
import os
from pathlib import Path

import numpy as np
from helpers import run_zoo
from image_folders import write_png_digits

from zoo.data import find_idx_files, read_idx
from zoo.data.by_path import make_request, open_path
from zoo.data.decoded_cache import PARALLEL_FROM
from zoo.evaluate.metrics import evaluate

IMAGES = 2_000  # of the real test split: enough for worker processes and for one epoch to learn


def mnist_test_split():
    """(images, labels) of MNIST's test split: the real one where ZOO_REAL_DATA_DIR has it."""
    for base in (os.environ.get("ZOO_REAL_DATA_DIR", ""), os.environ["ZOO_DATA_DIR"]):
        paths = find_idx_files(Path(base) / "mnist") if base else None
        if paths:
            images, labels = read_idx(paths["test_images"], 3).numpy(), read_idx(paths["test_labels"], 1).numpy()
            return images[:IMAGES], labels[:IMAGES]
    raise AssertionError("conftest writes a small mnist into ZOO_DATA_DIR; it is missing")


def test_the_folder_route_gives_the_idx_routes_bytes_and_trains(tmp_path):
    images, labels = mnist_test_split()
    write_png_digits(tmp_path / "digits", images, labels)
    splits = open_path(make_request(tmp_path / "digits"))
    # Files are read in path order: digit folder, then index.
    order = np.lexsort((np.arange(len(labels)), labels))
    decoded = np.asarray(splits.train.array)
    assert decoded.shape == (len(images), 1, 28, 28) and decoded.dtype == np.uint8
    assert np.array_equal(decoded[:, 0], images[order])
    rows = np.concatenate([splits.train.rows, splits.test.rows])
    got = np.concatenate([splits.train_labels, splits.test_labels])
    assert np.array_equal(got, labels[order][rows]) and splits.info["label_names"] == [str(d) for d in range(10)]

    run = tmp_path / "run"
    run_zoo(
        "train",
        "deep-ae",
        "--data",
        tmp_path / "digits",
        "--epochs",
        1,
        "--batch-size",
        8,
        "--set",
        "hidden=[128]",
        "--set",
        "latent=32",
        "--out",
        run,
        check=True,
    )
    config = json.loads((run / "config.json").read_text())
    assert config["data_shape"] == [1, 28, 28] and config["data"]["left_out"]["count"] == 0
    metrics = evaluate(run)
    assert metrics["test_samples"] == config["data"]["test_samples"] and np.isfinite(metrics["mse"])
    if len(images) > PARALLEL_FROM:  # the real digits: one epoch already does better than the mean digit
        train, test = splits.train[:].float() / 255, splits.test[:].float() / 255
        mean_digit_mse = float((test - train.mean(0)).pow(2).mean())
        assert metrics["mse"] < 0.9 * mean_digit_mse, (metrics, mean_digit_mse)
