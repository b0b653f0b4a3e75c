"""CIFAR-10 from its binary version: ``data_batch_1.bin`` ... ``data_batch_5.bin`` and
``test_batch.bin``, each a run of 3,073-byte records (one label byte, then the 32x32 red, green and
blue planes), which is the zoo's N x C x H x W uint8 layout as it lies on disk. The "python version"
is a set of pickles, which the zoo never loads."""

from pathlib import Path

import zoo

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
LAYOUTS = ("", "cifar-10-batches-bin")  # the files directly, or the folder the archive unpacks to
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
HINT = (
    "download the binary version, cifar-10-binary.tar.gz, from https://www.cs.toronto.edu/~kriz/cifar.html, "
    "unpack it and pass the folder with --data (or put it in $ZOO_DATA_DIR/cifar10/)"
)


def find_folder(data_dir=None) -> Path:
    """The folder holding the six .bin files, searched as IDX datasets are."""
    from zoo.data import candidate_dirs

    searched = [base / layout for base in candidate_dirs("cifar10", data_dir) for layout in LAYOUTS]
    for folder in searched:
        if all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
            return folder
    pickled = [
        str(f) for f in searched if (f.parent / "cifar-10-batches-py").is_dir() or (f / "data_batch_1").is_file()
    ]
    note = f"; {pickled[0]} holds the python version (pickles), which is not read" if pickled else ""
    where = ", ".join(str(p) for p in dict.fromkeys(searched))
    raise zoo.ZooError(
        f"cifar10's binary files ({', '.join(TRAIN_FILES[:1])} ... {TEST_FILE}) not found "
        f"(looked in {where}){note}; {HINT}"
    )


def read_records(path: Path):
    """(images uint8 [N, 3, 32, 32], labels int64 [N]) from one .bin file."""
    import numpy as np

    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise zoo.ZooError(
            f"{path}: {raw.size:,} bytes is not a whole number of {RECORD:,}-byte records "
            "(truncated?); replace the file"
        )
    records = raw.reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise zoo.ZooError(f"{path}: label {labels.max()} found, CIFAR-10 has {len(CLASSES)}; is it CIFAR-100's?")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def load(data_dir=None):
    import numpy as np

    from zoo.data import Splits

    folder = find_folder(data_dir)
    parts = [read_records(folder / name) for name in TRAIN_FILES]
    test, test_labels = read_records(folder / TEST_FILE)
    return Splits(
        train=np.concatenate([p[0] for p in parts]),
        test=test,
        train_labels=np.concatenate([p[1] for p in parts]),
        test_labels=test_labels,
        source=str(folder.resolve()),
    )


@zoo.hookimpl
def register_datasets(register):
    register(
        zoo.DatasetSpec(
            name="cifar10",
            data_shape=(3, 32, 32),
            summary="CIFAR-10 colour images in 10 classes, 3x32x32, 50k train / 10k test (binary version)",
            load=load,
            hint=HINT,
        )
    )
