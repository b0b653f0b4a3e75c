"""IDX files: layouts accepted, corruption caught with one clear message, nothing downloaded."""

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_zoo
from tiny_data import idx_bytes, write_tiny_idx

import zoo
from zoo.data import load_idx_dataset, read_idx


def write_fake_mnist(folder, n_train=12, n_test=5, gz=True, seed=0):
    return write_tiny_idx(folder, n_train, n_test, seed, gz)


@pytest.mark.parametrize("gz", [True, False])
def test_loads_plain_and_gzipped_idx_as_uint8(tmp_path, gz):
    arrays = write_fake_mnist(tmp_path / "mnist", gz=gz)
    splits = load_idx_dataset("mnist", data_dir=tmp_path)
    assert splits.train.dtype == torch.uint8 and splits.train.shape == (12, 1, 28, 28)
    assert np.array_equal(splits.train[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(splits.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_accepts_torchvisions_raw_layout(tmp_path):
    write_fake_mnist(tmp_path / "FashionMNIST" / "raw")
    assert load_idx_dataset("fashion-mnist", data_dir=tmp_path).test.shape == (5, 1, 28, 28)


def test_data_dir_env_var_is_searched(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "mnist")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    assert load_idx_dataset("mnist").source == str((tmp_path / "mnist").resolve())


def test_truncated_file_names_the_file(tmp_path):
    write_fake_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(zoo.ZooError, match="train-images-idx3-ubyte: truncated"):
        read_idx(path, 3)


def test_foreign_file_is_rejected_by_its_magic_number(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(zoo.ZooError, match="not an IDX file"):
        read_idx(path, 3)


def test_label_count_must_match_images(tmp_path):
    write_fake_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(7)))
    with pytest.raises(zoo.ZooError, match="holds 7 items"):
        load_idx_dataset("mnist", data_dir=tmp_path)


def test_missing_dataset_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(zoo.ZooError) as err:
        load_idx_dataset("mnist")
    assert str(tmp_path / "mnist") in str(err.value) and "ZOO_DATA_DIR" in str(err.value)


def test_cli_truncated_idx_is_one_line(tmp_path):
    write_fake_mnist(tmp_path / "mnist", gz=False)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:50])
    result = run_zoo("train", "deep-ae", "--data-dir", tmp_path, "--epochs", "1", "--out", tmp_path / "run")
    assert_one_line_error(result, "t10k-images-idx3-ubyte", "truncated")
    assert not (tmp_path / "run").exists()


def test_zoo_datasets_reports_where_each_was_found(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    import json

    rows = {r["name"]: r for r in json.loads(run_zoo("datasets", "--data-dir", tmp_path, "--json", check=True).stdout)}
    assert rows["mnist"]["found"] and rows["mnist"]["where"] == str(tmp_path / "mnist")
    assert rows["points3d"]["found"]
