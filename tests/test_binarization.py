"""Dynamic binarization: the test split's one fixed draw, the mnist-binary route, resume with
Bernoulli-resampled batches, and the training progress the loop hands to the model."""

import json
from dataclasses import dataclass

import pytest
import torch
from interrupted import train_until_interrupted
from safetensors.torch import load_file

import zoo
from zoo.core import registry
from zoo.data.loading import binarize_fixed, load_splits
from zoo.plugins.networks.vae import VAE
from zoo.plugins.vae import VAEConfig
from zoo.train.loop import train


def test_the_test_split_is_binarized_once_with_a_fixed_seed():
    spec = zoo.get_dataset("mnist")
    grey = load_splits(spec, None, 0, "cpu").test
    first = load_splits(spec, None, 0, "cpu", binarize_test_seed=0).test
    again = load_splits(spec, None, 0, "cpu", binarize_test_seed=0).test
    subset = load_splits(spec, None, 100, "cpu", binarize_test_seed=0).test
    assert first.dtype == torch.uint8 and set(first.unique().tolist()) <= {0, 255}
    assert torch.equal(first, again) and torch.equal(subset, first[:100])  # a subset is a prefix
    assert not torch.equal(first, binarize_fixed(grey, 1))
    # Bernoulli(intensity): the mean pixel is kept.
    assert abs(first.float().mean() - grey.float().mean()) < 0.01 * 255


def test_mnist_binary_and_the_set_route_record_the_same_choice(tmp_path):
    by_dataset = train("vae", tmp_path / "a", dataset="mnist-binary", epochs=1, subset=64, batch_size=64)
    config = json.loads((by_dataset / "config.json").read_text())
    assert config["dataset"] == "mnist-binary" and config["train_config"]["binarize"] == "dynamic"
    assert config["train_config"]["test_binarization_seed"] == 0
    by_set = train("vae", tmp_path / "b", epochs=1, subset=64, batch_size=64, sets={"binarize": "dynamic"})
    a, b = load_file(by_dataset / "model.safetensors"), load_file(by_set / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)  # the same files, the same draws


def test_unknown_binarize_and_non_unit_data_are_one_clear_error(tmp_path):
    with pytest.raises(zoo.ZooUsageError, match="binarize must be one of none, dynamic"):
        train("vae", tmp_path / "a", epochs=1, subset=64, sets={"binarize": "static"})
    with pytest.raises(zoo.ZooUsageError, match="binarize=dynamic needs data in"):
        train("pca-ae", tmp_path / "b", epochs=1, sets={"binarize": "dynamic"})


def test_resume_with_dynamic_binarization_and_warmup_is_bit_identical(tmp_path, monkeypatch):
    options = dict(
        epochs=2,
        subset=128,
        batch_size=64,
        seed=5,
        sets={"binarize": "dynamic", "iw_samples": 2, "kl_warmup_epochs": 2.0},
    )
    whole = train("vae", tmp_path / "whole", **options)

    train_until_interrupted(monkeypatch, "vae", tmp_path / "split", **options)
    train(None, resume=tmp_path / "split")
    a, b = load_file(whole / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)


class ProgressSpy(VAE):
    seen: list = []

    def loss(self, x):
        if self.training:
            type(self).seen.append(self.epochs_done)
            assert set(x.unique().tolist()) <= {0.0, 1.0}  # batches arrive binarized
        return super().loss(x)


@dataclass
class _SpyConfig(VAEConfig):
    hidden: int = 16


class SpyPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="progress-spy",
                config=_SpyConfig,
                build=ProgressSpy,
                default_dataset="mnist-binary",
                summary="records epochs_done",
            )
        )


def test_the_loop_sets_the_training_progress_before_each_step(tmp_path):
    registry.register_plugin(SpyPlugin(), "spy")
    try:
        ProgressSpy.seen = []
        # Nothing held out for the anomaly threshold: 128 samples, two batches of 64 per epoch.
        train("progress-spy", tmp_path / "spy", epochs=2, subset=128, batch_size=64, sets={"score_holdout": "0"})
    finally:
        registry.unregister_plugin("spy")
    assert ProgressSpy.seen == [0.0, 0.5, 1.0, 1.5]
