"""IDX datasets (MNIST's format): where their files are looked for, and reading them.

The core knows only the IDX format and the search order; what is particular to a dataset (extra
folder layouts, how to download it, how to install it) comes from its plugin's ``DatasetSpec``.
"""

import gzip
import math
import os
import struct
from pathlib import Path

from zoo.core.errors import ZooError
from zoo.data.splits import Splits

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def cache_home() -> Path:
    """$XDG_CACHE_HOME/zoo, or ~/.cache/zoo: downloaded datasets and what `zoo info` measured."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zoo"


def user_cache() -> Path:
    return cache_home() / "datasets"


def candidate_dirs(name: str, data_dir=None) -> list[Path]:
    """Folders to look in, in order. An explicit ``data_dir`` is the only place looked (the folder
    itself or its <name>/ subfolder); otherwise $ZOO_DATA_DIR/<name>, the user cache, Debian's folder."""
    if data_dir:
        return [Path(data_dir), Path(data_dir) / name]
    dirs = []
    if os.environ.get("ZOO_DATA_DIR"):
        dirs.append(Path(os.environ["ZOO_DATA_DIR"]) / name)
    return dirs + [user_cache() / name, Path("/usr/share/datasets") / name]


def _idx_path(folder: Path, stem: str):
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def find_idx_files(folder: Path, layouts=()):
    """The four IDX files in ``folder`` or one of its ``layouts`` subfolders (plain or gzipped), or None."""
    for base in [folder, *(folder / layout for layout in layouts)]:
        paths = {key: _idx_path(base, stem) for key, stem in IDX_FILES.items()}
        if all(paths.values()):
            return paths
    return None


def _spec(name_or_spec):
    if isinstance(name_or_spec, str):
        from zoo.core.registry import get_dataset

        return get_dataset(name_or_spec)
    return name_or_spec


def locate(dataset, data_dir=None, download=True) -> dict:
    """Paths of a dataset's four IDX files (``dataset``: a name or a DatasetSpec). Without an
    explicit ``data_dir``, the plugin's download into the user cache is the last resort."""
    spec = _spec(dataset)
    searched = candidate_dirs(spec.name, data_dir)
    for folder in searched:
        paths = find_idx_files(folder, spec.layouts)
        if paths:
            return paths
    reason = ""
    if spec.download and download and not data_dir and os.environ.get("ZOO_OFFLINE", "") in ("", "0"):
        cache = user_cache() / spec.name
        try:
            spec.download(cache)
        except Exception as exc:  # no network, server down, ...: fall through to the message
            reason = f"; download failed ({type(exc).__name__})"
        else:
            paths = find_idx_files(cache, spec.layouts)
            if paths:
                return paths
            reason = "; download gave no IDX files"
    where = ", ".join(str(p) for p in dict.fromkeys(searched))
    if data_dir:
        raise ZooError(
            f"dataset {spec.name!r} not found in --data-dir {data_dir} (looked in {where}); "
            f"put its four IDX files there, or leave out --data-dir to search the usual places"
        )
    raise ZooError(
        f"dataset {spec.name!r} not found (looked in {where}{reason}); put its four IDX files in one of "
        f"those folders, pass --data-dir, or set ZOO_DATA_DIR to a folder holding {spec.name}/"
        + (f" ({spec.hint})" if spec.hint else "")
    )


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


def load_idx_dataset(dataset, data_dir=None, download=True) -> Splits:
    """Both splits of an IDX dataset (``dataset``: a name or a DatasetSpec), as uint8 images."""
    spec = _spec(dataset)
    paths = locate(spec, data_dir, download)
    train = read_idx(paths["train_images"], 3)
    test = read_idx(paths["test_images"], 3)
    for split in (train, test):
        if (1, *split.shape[1:]) != tuple(spec.data_shape):
            raise ZooError(
                f"{spec.name}: expected images of shape {tuple(spec.data_shape)[1:]}, "
                f"found {tuple(split.shape[1:])} in {paths['train_images'].parent}"
            )
    train_labels = read_idx(paths["train_labels"], 1, expected_count=len(train))
    test_labels = read_idx(paths["test_labels"], 1, expected_count=len(test))
    return Splits(
        train=train.unsqueeze(1),
        test=test.unsqueeze(1),
        train_labels=train_labels.long(),
        test_labels=test_labels.long(),
        source=str(paths["train_images"].parent.resolve()),
    )
