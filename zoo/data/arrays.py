"""``.npy`` and ``.npz`` files as data: one array, or ``x_train``/``x_test`` with optional
``y_train``/``y_test`` labels. Never unpickled (``allow_pickle=False``): an array of Python objects
is refused.

The layout rule, by the number of dimensions:

- 2: N x D vectors (for the models that flatten);
- 3: N x H x W, greyscale images;
- 4: N x C x H x W when axis 1 has 1 or 3 entries and axis 3 does not; N x H x W x C when axis 3
  has 1 or 3 and axis 1 does not. Both (e.g. N x 3 x 8 x 3) is ambiguous and refused, as is neither.

uint8 arrays are pixels in [0, 255]; other integer arrays must lie in that range and become uint8;
float arrays become float32, must be finite and, for images, lie in [0, 1]. A uint8 N x C x H x W
``.npy`` is memory-mapped as it is (it can be larger than memory); the rest is converted in memory.
"""

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from zoo.core.errors import ZooUsageError

CHANNEL_COUNTS = (1, 3)


def layout_of(shape: tuple, where: str) -> str:
    """ "NCHW", "NHWC", "NHW" or "ND" by the rule above; ZooUsageError for any other shape."""
    rule = "give N x D, N x H x W, N x C x H x W or N x H x W x C with C 1 or 3"
    if len(shape) == 2:
        return "ND"
    if len(shape) == 3:
        return "NHW"
    if len(shape) != 4:
        raise ZooUsageError(f"{where}: an array of shape {tuple(shape)} is not data the zoo reads; {rule}")
    first, last = shape[1] in CHANNEL_COUNTS, shape[3] in CHANNEL_COUNTS
    if first and last:
        raise ZooUsageError(
            f"{where}: shape {tuple(shape)} is ambiguous (channels first or last?); "
            "transpose it to N x C x H x W with np.transpose and make H and W not 1 or 3, "
            "or save it as N x H x W for greyscale"
        )
    if not (first or last):
        raise ZooUsageError(f"{where}: shape {tuple(shape)} has no channel axis of 1 or 3; {rule}")
    return "NCHW" if first else "NHWC"


def as_samples(array: np.ndarray, where: str) -> tuple:
    """(samples in the zoo's layout and dtype, the layout found); mapped uint8 NCHW stays mapped."""
    if array.dtype == object or array.dtype.fields is not None:
        raise ZooUsageError(f"{where}: an array of {array.dtype} is not numbers; give uint8 or float pixels")
    layout = layout_of(array.shape, where)
    if len(array) == 0:
        raise ZooUsageError(f"{where}: the array holds no samples")
    if array.dtype.kind in "iub" and array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise ZooUsageError(f"{where}: integer pixels must lie in [0, 255], found {array.min()}..{array.max()}")
        array = array.astype(np.uint8)
    elif array.dtype.kind in "fc":
        array = _checked_floats(array, where, images=layout != "ND")
    elif array.dtype != np.uint8:
        raise ZooUsageError(f"{where}: arrays of {array.dtype} are not read; give uint8 or float values")
    if layout == "NHW":
        array = array[:, None]
    elif layout == "NHWC":
        array = np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    return array, layout


def _checked_floats(array, where: str, images: bool) -> np.ndarray:
    if array.dtype.kind == "c":
        raise ZooUsageError(f"{where}: complex numbers are not data the zoo reads")
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ZooUsageError(f"{where}: the array holds NaN or infinite values; remove or replace them")
    if images and (array.min() < 0 or array.max() > 1):
        raise ZooUsageError(
            f"{where}: float images must lie in [0, 1] (found {array.min():g}..{array.max():g}); "
            "divide by 255, or save them as uint8"
        )
    return array


def as_labels(array, count: int, where: str) -> np.ndarray:
    labels = np.asarray(array)
    if labels.shape != (count,) or labels.dtype.kind not in "iu":
        raise ZooUsageError(
            f"{where}: labels must be {count} integers (one per sample), found {labels.dtype} of shape {labels.shape}"
        )
    return labels.astype(np.int64)


def read_arrays(path: Path) -> dict:
    """{"x_train", "x_test" (or None), "y_train", "y_test" (or None)} from a .npy or .npz file."""
    try:
        if path.suffix == ".npy":
            return {"x_train": np.load(path, mmap_mode="r", allow_pickle=False)}
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if "x_train" in keys:
                return {key: npz[key] for key in ("x_train", "x_test", "y_train", "y_test") if key in keys}
            if len(keys) == 1:
                return {"x_train": npz[keys[0]]}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ZooUsageError(
            f"{path}: not a readable {path.suffix} file ({type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0][:120]})"
        ) from None
    raise ZooUsageError(
        f"{path}: expected one array, or x_train (with x_test, y_train, y_test); found {', '.join(keys) or 'no arrays'}"
    )


def file_fingerprint(path: Path) -> str:
    stat = os.stat(path)
    return hashlib.sha256(f"{path.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode()).hexdigest()
