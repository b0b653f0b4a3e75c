""".npy and .npz files as data: the layout rule, dtypes, x_train/x_test with labels, and what is
refused (ambiguous layouts, NaN, missing keys, pickled objects)."""

import numpy as np
import pytest
import torch

import zoo
from zoo.data.by_path import make_request, open_path
from zoo.data.splits import MappedSplit, place_split


def open_array(path, **options):
    return open_path(make_request(path, **options))


@pytest.mark.parametrize(
    "shape, layout, sample_shape",
    [
        ((20, 3, 8, 6), "NCHW", (3, 8, 6)),
        ((20, 1, 8, 6), "NCHW", (1, 8, 6)),
        ((20, 8, 6), "NHW", (1, 8, 6)),
        ((20, 8, 6, 3), "NHWC", (3, 8, 6)),
        ((20, 5), "ND", (5,)),
    ],
)
def test_layouts_become_samples_in_nchw(tmp_path, shape, layout, sample_shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.save(tmp_path / "x.npy", array)
    splits = open_array(tmp_path / "x.npy")
    every = np.concatenate([np.asarray(part[:]) for part in (splits.train, splits.test)])
    expected = {"NHW": lambda: array[:, None], "NHWC": lambda: array.transpose(0, 3, 1, 2)}.get(layout, lambda: array)()
    assert splits.info["layout"] == layout and tuple(splits.train.shape[1:]) == sample_shape
    assert sorted(map(bytes, every)) == sorted(map(bytes, expected))  # every sample, once, as laid out


@pytest.mark.parametrize(
    "shape, words", [((9, 3, 8, 3), "ambiguous"), ((9, 5, 8, 6), "no channel axis"), ((9, 2, 3, 4, 5), "is not data")]
)
def test_shapes_the_rule_cannot_place_are_refused(tmp_path, shape, words):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.uint8))
    with pytest.raises(zoo.ZooError, match=words):
        open_array(tmp_path / "x.npy")


def test_floats_and_wider_integers(tmp_path):
    floats = np.random.default_rng(0).random((10, 4, 4), dtype=np.float64)
    np.save(tmp_path / "f.npy", floats)
    splits = open_array(tmp_path / "f.npy")
    assert splits.train.dtype == np.float32 and splits.train.shape[1:] == (1, 4, 4)
    np.save(tmp_path / "i.npy", np.full((10, 4, 4), 200, np.int64))
    assert open_array(tmp_path / "i.npy").train.dtype == np.uint8
    np.save(tmp_path / "big.npy", np.full((10, 4, 4), 300, np.int64))
    with pytest.raises(zoo.ZooError, match=r"must lie in \[0, 255\]"):
        open_array(tmp_path / "big.npy")
    np.save(tmp_path / "loud.npy", floats * 255)
    with pytest.raises(zoo.ZooError, match=r"float images must lie in \[0, 1\]"):
        open_array(tmp_path / "loud.npy")


def test_npz_with_named_splits_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 256, (12, 6, 6, 3), np.uint8), rng.integers(0, 256, (4, 6, 6, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x_train, x_test=x_test, y_train=np.arange(12) % 3, y_test=[0, 1, 2, 2])
    splits = open_array(tmp_path / "d.npz")
    assert np.array_equal(np.asarray(splits.test), x_test.transpose(0, 3, 1, 2))
    assert splits.test_labels.tolist() == [0, 1, 2, 2] and splits.info["label_names"] == ["0", "1", "2"]
    assert splits.info["split"] == "x_train and x_test"
    np.savez(tmp_path / "one.npz", anything=x_train)  # a single array of any name: a seeded test split
    assert len(open_array(tmp_path / "one.npz").test) == 1


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"images": np.zeros((4, 2)), "targets": np.zeros(4)}, "expected one array, or x_train"),
        ({"x_train": np.zeros((4, 2)), "y_train": np.zeros((3,), np.int64)}, "labels must be 4 integers"),
        ({"x_train": np.full((4, 2), np.nan)}, "NaN"),
    ],
)
def test_npz_mistakes_are_named(tmp_path, arrays, words):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(zoo.ZooError, match=words):
        open_array(tmp_path / "d.npz")


def test_pickled_objects_are_never_loaded(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(zoo.ZooError, match="not a readable .npy file"):
        open_array(tmp_path / "objects.npy")


def test_a_uint8_npy_larger_than_the_budget_stays_memory_mapped(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (30, 1, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", array)
    splits = open_array(tmp_path / "x.npy")
    mapped = place_split(splits.train, "cpu", budget=10)
    in_ram = place_split(splits.train, "cpu", budget=10**9)
    assert isinstance(mapped, MappedSplit) and isinstance(mapped.array, np.memmap) and torch.is_tensor(in_ram)
    order = torch.randperm(len(in_ram), generator=torch.Generator().manual_seed(0))[:7]
    assert torch.equal(mapped[order], in_ram[order])  # gathered sorted, handed back in the order asked
    assert torch.equal(mapped[2:5], in_ram[2:5])
