"""Datasets: finding IDX files, checking and loading them, and device-resident splits.

Images are loaded once into one uint8 tensor per split; the training loop moves it to the device and
takes batches as index slices, so no per-sample Python runs during training.
"""

import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import ZooError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# torchvision's folder for each dataset, for its MNIST/raw/ layout.
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


@dataclass
class Splits:
    train: object  # uint8 [N, *data_shape] for images, float32 otherwise
    test: object
    train_labels: object = None
    test_labels: object = None
    source: str = ""  # where the data came from, for messages and config.json


def as_float(batch):
    """A batch as float32 in the model's range: uint8 pixels become [0, 1]."""
    import torch

    if batch.dtype == torch.uint8:
        return batch.float().div_(255.0)
    return batch.float()


def user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zoo" / "datasets"


def candidate_dirs(name: str, data_dir=None) -> list[Path]:
    """Folders to look in, in order: --data-dir, $ZOO_DATA_DIR/<name>, user cache, Debian's folder."""
    dirs = []
    if data_dir:
        dirs += [Path(data_dir), Path(data_dir) / name]
    if os.environ.get("ZOO_DATA_DIR"):
        dirs.append(Path(os.environ["ZOO_DATA_DIR"]) / name)
    dirs += [user_cache() / name, Path("/usr/share/datasets") / name]
    return dirs


def _idx_path(folder: Path, stem: str):
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def find_idx_files(folder: Path, name: str):
    """The four IDX files in ``folder`` (plain, gzipped, or torchvision's <Name>/raw/), or None."""
    layouts = [folder]
    if name in TORCHVISION_FOLDERS:
        layouts.append(folder / TORCHVISION_FOLDERS[name] / "raw")
    for base in layouts:
        paths = {key: _idx_path(base, stem) for key, stem in IDX_FILES.items()}
        if all(paths.values()):
            return paths
    return None


def locate(name: str, data_dir=None, download=True) -> dict:
    """Paths of the four IDX files, downloading into the user cache as a last resort."""
    searched = candidate_dirs(name, data_dir)
    for folder in searched:
        paths = find_idx_files(folder, name)
        if paths:
            return paths
    if download and os.environ.get("ZOO_OFFLINE", "") in ("", "0"):
        cache = user_cache() / name
        try:
            _download(name, cache)
        except Exception as exc:  # no network, server down, ...: fall through to the message
            reason = f"; download failed ({type(exc).__name__})"
        else:
            paths = find_idx_files(cache, name)
            if paths:
                return paths
            reason = "; download gave no IDX files"
    else:
        reason = ""
    where = ", ".join(str(p) for p in dict.fromkeys(searched))
    raise ZooError(
        f"dataset {name!r} not found (looked in {where}{reason}); put its four IDX files in one of "
        f"those folders, pass --data-dir, or set ZOO_DATA_DIR to a folder holding {name}/"
        + (" (Debian: apt-get install dataset-fashion-mnist)" if name == "fashion-mnist" else "")
    )


def _download(name: str, cache: Path) -> None:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}[name]
    cls(root=str(cache), train=True, download=True)
    cls(root=str(cache), train=False, download=True)


def read_idx(path: Path, ndim: int, expected_count=None):
    """Parse one IDX file of unsigned bytes, checking magic number, dimensions and size."""
    import numpy as np
    import torch

    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ZooError(f"{path}: cannot read ({exc}); replace the file") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ZooError(f"{path}: too short to be an IDX file ({len(raw)} bytes); replace the file")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != 0x0800 + ndim:  # 0x08: unsigned byte data, then the number of dimensions
        raise ZooError(f"{path}: not an IDX file of {ndim}-d unsigned bytes (magic {magic:#010x}); replace the file")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) != header + math.prod(dims):
        raise ZooError(
            f"{path}: truncated or padded: {len(raw)} bytes, the header promises {header + math.prod(dims)}; "
            "replace the file"
        )
    if expected_count is not None and dims[0] != expected_count:
        raise ZooError(f"{path}: holds {dims[0]} items, its partner file holds {expected_count}; replace the pair")
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy())


def load_idx_dataset(name: str, data_dir=None, download=True) -> Splits:
    paths = locate(name, data_dir, download)
    train = read_idx(paths["train_images"], 3)
    test = read_idx(paths["test_images"], 3)
    for split in (train, test):
        if tuple(split.shape[1:]) != (28, 28):
            raise ZooError(f"{name}: expected 28x28 images, found {tuple(split.shape[1:])}")
    train_labels = read_idx(paths["train_labels"], 1, expected_count=len(train))
    test_labels = read_idx(paths["test_labels"], 1, expected_count=len(test))
    return Splits(
        train=train.unsqueeze(1),
        test=test.unsqueeze(1),
        train_labels=train_labels.long(),
        test_labels=test_labels.long(),
        source=str(paths["train_images"].parent.resolve()),
    )


def idx_dataset(name: str, summary: str):
    """A DatasetSpec for a 28x28 IDX dataset laid out like MNIST."""
    from .specs import DatasetSpec

    return DatasetSpec(
        name=name,
        data_shape=(1, 28, 28),
        load=lambda data_dir=None: load_idx_dataset(name, data_dir),
        summary=summary,
        locate=lambda data_dir=None: str(locate(name, data_dir, download=False)["train_images"].parent),
    )
