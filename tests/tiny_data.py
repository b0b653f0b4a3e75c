"""Small IDX datasets written by the tests themselves, so a fresh clone runs the whole suite.

The images are not noise: each label draws a bar at its own angle, shifted and blurred a little per
image, so models have something to learn and latent plots have structure.
"""

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x08 <ndim>, the dimensions, then the data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def bars(labels: np.ndarray, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """uint8 [N, size, size]: for label k a bar through the centre at k * 18 degrees."""
    n = len(labels)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    angle = labels * np.pi / 10 + rng.normal(0, 0.05, n)
    shift = rng.normal(0, 1.0, (n, 2))
    dx, dy = x[None] - shift[:, 0, None, None], y[None] - shift[:, 1, None, None]
    across = np.abs(dx * np.sin(angle)[:, None, None] - dy * np.cos(angle)[:, None, None])
    along = np.abs(dx * np.cos(angle)[:, None, None] + dy * np.sin(angle)[:, None, None])
    width = rng.uniform(1.0, 2.0, n)[:, None, None]
    image = np.exp(-((across / width) ** 2)) * (along < 10)
    return np.clip(image * 255 + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def write_tiny_idx(folder: Path, n_train: int = 512, n_test: int = 256, seed: int = 0, gz: bool = True) -> dict:
    """Write the four IDX files of a tiny 28x28 dataset into ``folder``; returns the arrays by stem."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train_labels, test_labels = rng.integers(0, 10, n_train), rng.integers(0, 10, n_test)
    arrays = dict(zip(IDX_STEMS, (bars(train_labels, rng), train_labels, bars(test_labels, rng), test_labels)))
    for stem, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (folder / stem).write_bytes(data)
    return arrays
