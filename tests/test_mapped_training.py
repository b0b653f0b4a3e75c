"""Training from a split larger than the memory budget: it stays memory-mapped, batches are gathered
from the file, and the run equals one trained from RAM, resumed or not, bit for bit."""

import pytest
import torch
from image_folders import write_images
from interrupted import train_until_interrupted
from safetensors.torch import load_file

import zoo.train.loop as loop
from zoo.data.by_path import make_request
from zoo.data.splits import MappedSplit
from zoo.train.loop import train

# The VAE draws noise every step, so resuming also checks the RNG state.
OPTIONS = dict(epochs=2, batch_size=8, seed=3, sets={"hidden": 16, "latent": 4})


@pytest.fixture
def folder(tmp_path):
    write_images(tmp_path / "d" / "a", 20, size=(8, 8), seed=1)
    write_images(tmp_path / "d" / "b", 20, size=(8, 8), seed=2)
    return make_request(tmp_path / "d")


def weights(run):
    return load_file(run / "model.safetensors")


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_mapped_split_trains_as_the_split_in_memory_and_resumes_bit_identically(tmp_path, folder, monkeypatch):
    placed = []
    real_start = loop.start

    def start_and_note(*args, **kwargs):
        started = real_start(*args, **kwargs)
        placed.append(type(started.splits.train))
        return started

    monkeypatch.setattr(loop, "start", start_and_note)
    in_memory = train("vae", tmp_path / "ram", data=folder, **OPTIONS)
    mapped = train("vae", tmp_path / "mapped", data=folder, **OPTIONS, memory_budget=1)
    assert placed == [torch.Tensor, MappedSplit]
    assert_same_weights(weights(in_memory), weights(mapped))

    train_until_interrupted(monkeypatch, "vae", tmp_path / "split", data=folder, **OPTIONS, memory_budget=1)
    train(None, resume=tmp_path / "split")
    assert placed[-1] is MappedSplit  # the resumed run kept its budget and its data
    assert_same_weights(weights(mapped), weights(tmp_path / "split"))
