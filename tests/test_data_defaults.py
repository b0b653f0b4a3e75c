"""The data decides how a run models it (zoo.train.data_defaults): colour or grey-level images get
the discretized logistic of 8-bit pixels and no binarization, and that likelihood learns; binary-like
digits keep the Bernoulli recipe; what the user sets wins; the choice is printed and recorded."""

import json

import numpy as np
import torch
from image_folders import write_colour_shapes
from tiny_data import write_tiny_idx

from zoo.data import as_float
from zoo.data.by_path import DataRequest, open_path
from zoo.data.splits import place_split
from zoo.train.data_defaults import pixel_kind
from zoo.train.loop import train
from zoo.train.run_folder import load_run

SMALL_VAE = {"channels": 8, "hidden": 64, "latent": 8}


def test_a_colour_folder_trains_an_8_bit_likelihood_that_learns(tmp_path, capsys):
    """The discretized logistic once stayed near its initial spread (5.4 bits per dimension and
    more after a small folder's few hundred steps): a run of the default step budget's kind must get
    below that, with reconstructions far closer to the inputs than the mean image is."""
    write_colour_shapes(tmp_path / "photos", 200, side=8)
    run_dir = train(
        "vae",
        tmp_path / "run",
        data=DataRequest(str(tmp_path / "photos")),
        sets={"hidden": 128, "latent": 8, "min_steps": 500},
        batch_size=16,
        lr=5e-3,
    )
    assert "data: 8-bit (colour images): likelihood logistic, binarize none" in capsys.readouterr().err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data_defaults"]["likelihood"] == "logistic"
    assert config["train_config"]["binarize"] == "none"
    assert config["train_config"]["epochs"] * 11 >= 500  # 171 train images, batch 16: 11 steps an epoch
    last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["test_bits_per_dim"] < 5.3, last
    run = load_run(run_dir)
    x = as_float(place_split(open_path(DataRequest(str(tmp_path / "photos"))).test, "cpu", 1e9))
    with torch.no_grad():
        recon = run.model.decode(run.model.encode(x))
    mean_image = x.mean(0, keepdim=True)
    assert float((recon - x).abs().mean()) < 0.3 * float((mean_image - x).abs().mean())


def test_binary_like_digits_keep_the_bernoulli_recipe_and_a_user_setting_wins(tmp_path, capsys):
    write_tiny_idx(tmp_path / "mnist", n_train=64, n_test=32)
    run_dir = train("conv-vae", tmp_path / "a", data_dir=tmp_path / "mnist", sets=SMALL_VAE, epochs=1, subset=32)
    assert "data: binary-like" in capsys.readouterr().err
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["model_config"]["likelihood"], config["train_config"]["binarize"]) == ("bernoulli", "dynamic")
    # --set likelihood=logistic on the same digits: binarization follows it off.
    run_dir = train(
        "conv-vae", tmp_path / "b", data_dir=tmp_path / "mnist", sets={**SMALL_VAE, "likelihood": "logistic"}, epochs=1
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["model_config"]["likelihood"], config["train_config"]["binarize"]) == ("logistic", "none")
    assert config["data_defaults"]["set_by_user"] == ["likelihood"]


def test_what_the_data_is():
    rng = np.random.default_rng(0)
    digits = np.where(rng.random((10, 1, 8, 8)) < 0.8, 0, 255).astype(np.uint8)
    assert pixel_kind(digits)[0] == "binary-like"
    assert pixel_kind(rng.integers(0, 256, (10, 1, 8, 8), dtype=np.uint8))[0] == "8-bit"
    assert pixel_kind(digits.repeat(3, axis=1))[0] == "8-bit"  # colour is never binarized
    assert pixel_kind(rng.random((10, 5)).astype(np.float32))[0] == "8-bit"
    assert pixel_kind(rng.normal(0, 3, (10, 5)).astype(np.float32))[0] == "not pixels"
