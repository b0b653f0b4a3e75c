"""Named datasets on the folder and array sources, on files the tests write in their formats:
CIFAR-10's binary records and CelebA's aligned faces."""

import json

import numpy as np
import pytest
from helpers import assert_one_line_error
from PIL import Image
from test_data_errors import zoo_here

import zoo
from zoo.plugins import celeba, cifar10
from zoo.train.loop import train


def write_cifar_bins(folder, per_file: int = 3, seed: int = 0) -> dict:
    """The six .bin files of CIFAR-10's binary version, ``per_file`` records each; returns the records."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name in (*cifar10.TRAIN_FILES, cifar10.TEST_FILE):
        records = rng.integers(0, 256, (per_file, cifar10.RECORD), dtype=np.uint8)
        records[:, 0] = rng.integers(0, 10, per_file)
        (folder / name).write_bytes(records.tobytes())
        written[name] = records
    return written


def test_cifar10_records_are_label_then_red_green_blue_planes(tmp_path):
    written = write_cifar_bins(tmp_path / "cifar-10-batches-bin")
    splits = zoo.get_dataset("cifar10").load(str(tmp_path))  # found in the folder the archive unpacks to
    assert splits.train.shape == (15, 3, 32, 32) and splits.test.shape == (3, 3, 32, 32)
    first = written["data_batch_1.bin"][0]
    assert splits.train_labels[0] == first[0]
    assert np.array_equal(splits.train[0, 0], first[1:1025].reshape(32, 32))  # red plane, row by row
    assert np.array_equal(splits.train[0, 2], first[2049:].reshape(32, 32))  # blue
    assert np.array_equal(splits.test_labels, written["test_batch.bin"][:, 0])


def test_cifar10_trains_from_a_folder_given_with_data(tmp_path):
    write_cifar_bins(tmp_path / "c")
    run = train(
        "conv-ae", tmp_path / "run", dataset="cifar10", data_dir=str(tmp_path / "c"), epochs=1, sets={"hidden": 4}
    )
    assert json.loads((run / "config.json").read_text())["data_shape"] == [3, 32, 32]


def test_cifar10_truncated_missing_or_pickled_is_one_line(tmp_path):
    write_cifar_bins(tmp_path / "c")
    path = tmp_path / "c" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    result = zoo_here("train", "conv-ae", "--dataset", "cifar10", "--data", tmp_path / "c", "--out", tmp_path / "r")
    assert_one_line_error(result, "data_batch_3.bin", "not a whole number of 3,073-byte records")
    (tmp_path / "py" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "py" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04pickle")
    result = zoo_here("train", "conv-ae", "--dataset", "cifar10", "--data", tmp_path / "py", "--out", tmp_path / "r")
    assert_one_line_error(result, "python version (pickles), which is not read", "cifar-10-binary.tar.gz")
    assert not (tmp_path / "r").exists()


def test_celeba_is_a_folder_cropped_to_148_and_resized_to_64(tmp_path):
    rng = np.random.default_rng(0)
    faces = tmp_path / "celeba" / "img_align_celeba"
    faces.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(faces / f"{i:06d}.jpg")
    splits = zoo.get_dataset("celeba").load(str(tmp_path))
    assert splits.train.shape == (9, 3, 64, 64) and splits.info["preprocess"] == {
        "size": [64, 64],
        "channels": 3,
        "crop": [148, 148],
    }
    with Image.open(faces / "000000.jpg") as image:
        expected = np.asarray(image.crop((15, 35, 163, 183)).resize((64, 64), Image.Resampling.BILINEAR))
    assert np.array_equal(splits.train.array[0], expected.transpose(2, 0, 1))  # the decoded file 000000.jpg


def test_celeba_missing_names_where_to_get_it(tmp_path):
    with pytest.raises(zoo.ZooError, match="img_align_celeba.zip"):
        celeba.find_folder(str(tmp_path))
