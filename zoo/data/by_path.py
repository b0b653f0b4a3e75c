"""``--data PATH``: a folder of images, or a ``.npy``/``.npz`` file, as training and test splits,
and what config.json records about it (``Splits.info``): the path, the files' fingerprint, the
preprocessing asked for and the one applied, the split, the label names and the files left out.

The test split: the ``test/`` folder beside ``train/``, or ``x_test``; otherwise a seeded draw of
``test_fraction`` of the samples (seed ``SPLIT_SEED``, whatever the training seed, so that runs
with different seeds are measured on the same test images).
"""

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.core.errors import ZooUsageError
from zoo.data.image_files import Preprocess
from zoo.data.splits import MappedSplit, Splits, fraction_split

SPLIT_SEED = 0
TEST_FRACTION = 0.1
LEFT_OUT_RECORDED = 20  # files named in config.json (the count is always there)
LEFT_OUT_SHOWN = 3  # files named in the warning line


@dataclass(frozen=True)
class DataRequest:
    path: str
    preprocess: Preprocess = field(default_factory=Preprocess)
    test_fraction: float = TEST_FRACTION
    # Every usable file or row as one split (train and test alike), in the folder's order: what
    # ``zoo score --data PATH`` scores. Never a training run's request.
    whole: bool = False
    # The fingerprint a run recorded (--resume, zoo eval, zoo score of the run's own data): other
    # files now would draw another test split, so opening them is refused.
    expect_fingerprint: str | None = None

    def describe(self) -> dict:
        return {"path": self.path, **self.preprocess.describe(), "test_fraction": self.test_fraction}

    @classmethod
    def from_record(cls, record: dict, path=None) -> "DataRequest":
        """The request config.json recorded (``info["asked"]``), for another ``path`` if given."""
        preprocess = Preprocess.from_record(record)
        return cls(str(path or record["path"]), preprocess, record.get("test_fraction", TEST_FRACTION))


def parse_image_size(text):
    """ "64" -> (64, 64); "48x64" -> (48, 64) (height x width); None stays None."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
    size = (int(match[1]), int(match[2] or match[1])) if match else None
    if not size or min(size) < 1:
        raise ZooUsageError(f"--image-size takes S or HxW (e.g. 64 or 48x64), not {text!r}")
    return size


def make_request(path, image_size=None, channels=None, test_fraction=None) -> DataRequest:
    """The command line's data options as a request (checked, nothing read yet)."""
    if channels not in (None, 1, 3):
        raise ZooUsageError(f"--channels takes 1 or 3, not {channels}")
    fraction = TEST_FRACTION if test_fraction is None else test_fraction
    return DataRequest(str(path), Preprocess(parse_image_size(image_size), channels), fraction)


def open_path(request: DataRequest, progress=False) -> Splits:
    """The splits of the data at ``request.path`` (uint8 arrays, memory-mapped where they were
    decoded, or float32 arrays), with ``info`` for config.json."""
    path = Path(request.path).expanduser()
    if not path.exists():
        raise ZooUsageError(f"--data {request.path}: no such file or folder")
    if path.is_dir():
        return _open_folder(path, request, progress)
    if path.suffix in (".npy", ".npz"):
        return _open_arrays(path, request)
    raise ZooUsageError(f"--data {request.path}: give a folder of images, a .npy or a .npz file")


def _open_folder(path: Path, request: DataRequest, progress) -> Splits:
    from zoo.data.decoded_cache import decoded
    from zoo.data.folder import list_folder

    listing = list_folder(path)
    if not listing.files:
        raise ZooUsageError(f"--data {request.path}: the folder holds no files; give a folder of images")
    images = decoded(listing, request.preprocess, progress=progress)
    usable = images.usable
    if request.whole:
        train_rows, test_rows, split = usable, usable, "every file"
    elif listing.splits is not None:
        in_split = np.array(listing.splits)[usable]
        train_rows, test_rows, split = usable[in_split == "train"], usable[in_split == "test"], "train/ and test/"
        for name, rows in (("train", train_rows), ("test", test_rows)):
            if not len(rows):
                raise ZooUsageError(f"--data {request.path}: {name}/ holds no usable image")
    else:
        train_at, test_at = fraction_split(len(usable), request.test_fraction, SPLIT_SEED)
        train_rows, test_rows, split = usable[train_at], usable[test_at], "seeded fraction"
    labels = np.array(listing.labels, dtype=np.int64) if listing.label_names else None
    _warn_left_out(request.path, images.left_out, len(listing.files))
    if listing.outside_splits:
        named = ", ".join(listing.outside_splits[:LEFT_OUT_SHOWN])
        print(
            f"note: {len(listing.outside_splits):,} file(s) in {request.path} lie outside train/ and test/ and "
            f"are not used: {named}",
            file=sys.stderr,
        )
    info = {
        "kind": "folder",
        "fingerprint": listing.fingerprint,
        "cache": str(images.path),
        "files": len(listing.files),
        "left_out": {"count": len(images.left_out), "files": images.left_out[:LEFT_OUT_RECORDED]},
    }
    return _splits(
        path,
        request,
        images.preprocess,
        split,
        info,
        listing.label_names,
        MappedSplit(images.images, train_rows),
        MappedSplit(images.images, test_rows),
        labels[train_rows] if labels is not None else None,
        labels[test_rows] if labels is not None else None,
    )


def _open_arrays(path: Path, request: DataRequest) -> Splits:
    from zoo.data.arrays import as_labels, as_samples, file_fingerprint, read_arrays

    if request.preprocess != Preprocess():
        raise ZooUsageError(
            f"--data {request.path}: --image-size and --channels apply to folders of images; an array is used as it is"
        )
    arrays = read_arrays(path)
    train, layout = as_samples(arrays["x_train"], f"{path} (x_train)")
    train_labels = as_labels(arrays["y_train"], len(train), f"{path} (y_train)") if "y_train" in arrays else None
    if request.whole:
        test, _ = as_samples(arrays["x_test"], f"{path} (x_test)") if "x_test" in arrays else (None, None)
        if test is not None and test.shape[1:] != train.shape[1:]:
            raise ZooUsageError(f"{path}: x_test's samples are {test.shape[1:]}, x_train's {train.shape[1:]}")
        if test is not None:
            train = np.concatenate([np.asarray(train), np.asarray(test)])
            if train_labels is not None and "y_test" in arrays:
                train_labels = np.concatenate(
                    [train_labels, as_labels(arrays["y_test"], len(test), f"{path} (y_test)")]
                )
            else:
                train_labels = None
        # A memory-mapped uint8 array stays on disk; another is copied (a read-only view would warn).
        train = MappedSplit(train) if isinstance(train, np.memmap) else np.array(train)
        test, test_labels, split = train, train_labels, "every row"
    elif "x_test" in arrays:
        test, _ = as_samples(arrays["x_test"], f"{path} (x_test)")
        if test.shape[1:] != train.shape[1:]:
            raise ZooUsageError(f"{path}: x_test's samples are {test.shape[1:]}, x_train's {train.shape[1:]}")
        test_labels = as_labels(arrays["y_test"], len(test), f"{path} (y_test)") if "y_test" in arrays else None
        split = "x_train and x_test"
    else:
        train_at, test_at = fraction_split(len(train), request.test_fraction, SPLIT_SEED)
        test_labels = train_labels[test_at] if train_labels is not None else None
        train_labels = train_labels[train_at] if train_labels is not None else None
        # A memory-mapped uint8 array stays on disk: its splits are rows of it.
        pick = (lambda rows: MappedSplit(train, rows)) if isinstance(train, np.memmap) else train.__getitem__
        train, test, split = pick(train_at), pick(test_at), "seeded fraction"
    names = (
        sorted({int(v) for v in np.concatenate([x for x in (train_labels, test_labels) if x is not None])})
        if train_labels is not None
        else []
    )
    info = {
        "kind": path.suffix[1:],
        "fingerprint": file_fingerprint(path),
        "layout": layout,
        "dtype": str(train.dtype).replace("torch.", ""),
    }
    shape = tuple(train.shape[1:])
    applied = Preprocess(shape[1:], shape[0]) if len(shape) == 3 else Preprocess()
    return _splits(path, request, applied, split, info, [str(n) for n in names], train, test, train_labels, test_labels)


def _splits(path, request, applied: Preprocess, split, info, label_names, train, test, train_labels, test_labels):
    if request.expect_fingerprint and info["fingerprint"] != request.expect_fingerprint:
        files = f" ({info['files']:,} files now)" if "files" in info else ""
        raise ZooUsageError(
            f"--data {request.path}: its files changed since the run was trained{files}, so its test split would "
            "not be the one trained against; put the files back as they were, or train a new run on them"
        )
    info = {
        "path": str(path.resolve()),
        **info,
        "asked": request.describe(),
        "preprocess": applied.describe(),
        "split": split,
        **({"test_fraction": request.test_fraction, "split_seed": SPLIT_SEED} if split == "seeded fraction" else {}),
        "train_samples": len(train),
        "test_samples": len(test),
        "label_names": label_names,
    }
    return Splits(
        train=train,
        test=test,
        train_labels=train_labels,
        test_labels=test_labels,
        source=str(path.resolve()),
        info=info,
    )


def _warn_left_out(where, left_out: list, total: int) -> None:
    if left_out:
        named = ", ".join(f"{name} ({why})" for name, why in left_out[:LEFT_OUT_SHOWN])
        more = f" and {len(left_out) - LEFT_OUT_SHOWN:,} more" if len(left_out) > LEFT_OUT_SHOWN else ""
        print(
            f"warning: left out {len(left_out):,} of {total:,} files in {where} that are not usable images: "
            f"{named}{more}",
            file=sys.stderr,
        )
