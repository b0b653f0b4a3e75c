"""The shared training loop: run folders, resume, evaluation, failures, data parallelism."""

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from helpers import assert_one_line_error, real_data_dir, run_zoo
from interrupted import train_until_interrupted
from safetensors.torch import load_file

import zoo
from zoo.core import registry
from zoo.evaluate.metrics import evaluate
from zoo.plugins.networks.pca_ae import PCAAutoEncoder
from zoo.train.loop import train
from zoo.train.run_folder import load_run

RUN_FILES = {
    "config.json",
    "model.safetensors",
    "state.safetensors",
    "metrics.jsonl",
    "recon.png",
    "samples.png",
    "latent.png",
    "curves.png",
}


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_trains_one_epoch_into_a_complete_run_folder(name, tmp_path):
    spec = zoo.get_spec(name)
    run = train(name, tmp_path / name, epochs=1, subset=256, batch_size=64)
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == name and config["dataset"] == spec.default_dataset
    assert config["versions"]["torch"] == torch.__version__
    # One epoch per stage: one record, two for a model with a second stage (vq-vae's prior).
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, len(records) + 1)) and len(records) <= 2
    for record in records:
        for key in ("epoch", "epoch_seconds", "samples_per_second", "train_loss", "test_loss"):
            assert math.isfinite(record[key]), key
        assert record["samples_per_second"] > 0
    metrics = evaluate(run)
    assert math.isfinite(metrics["mse"]) and 0 < metrics["test_samples"] <= 256
    # No leftover temporary files from the atomic writes.
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_pca_ae_learns_the_pca_plane(tmp_path):
    run = train("pca-ae", tmp_path / "pca")  # the model's own defaults on points3d
    angle = evaluate(run)["pca_angle_deg"]
    assert angle < 1.0, f"decoder subspace is {angle:.3f} degrees away from PCA's"


def test_pca_angle_detects_a_wrong_subspace(tmp_path):
    run = train("pca-ae", tmp_path / "pca", epochs=1, lr=1e-5)  # barely trained
    assert evaluate(run)["pca_angle_deg"] > 1.0


def test_vae_on_the_real_mnist_learns_in_one_epoch(tmp_path):
    """A quality number on the real data: one epoch of the VAE's recipe gives a test negative ELBO
    of about 115 nats (103 after the full 10 epochs)."""
    metrics = evaluate(train("vae", tmp_path / "vae", epochs=1, data_dir=real_data_dir("mnist")))
    assert metrics["test_samples"] == 10_000
    assert metrics["neg_elbo"] < 120, metrics


def test_vae_reports_a_positive_neg_elbo(tmp_path):
    metrics = evaluate(train("vae", tmp_path / "vae", epochs=1, subset=512))
    assert metrics["neg_elbo"] > 0 and metrics["bce"] > 0 and 0 < metrics["mse"] < 1


def test_resumed_run_matches_the_uninterrupted_run(tmp_path, monkeypatch):
    # The VAE draws noise every step, so this also checks that the RNG state is restored.
    options = dict(epochs=3, subset=512, batch_size=64, seed=3)
    whole = train("vae", tmp_path / "whole", **options)

    train_until_interrupted(monkeypatch, "vae", tmp_path / "split", **options)
    assert len((tmp_path / "split" / "metrics.jsonl").read_text().splitlines()) == 1
    train(None, resume=tmp_path / "split")

    a, b = load_file(whole / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    def lines(run):
        return [json.loads(x)["train_loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]

    assert lines(whole) == lines(tmp_path / "split")


@dataclass
class _Cfg:
    latent: int = 2


class ExplodesInEpochTwo(PCAAutoEncoder):
    calls = 0

    def loss(self, x):
        loss, metrics = super().loss(x)
        if self.training:
            type(self).calls += 1
        return (loss * float("nan") if type(self).calls > 10 else loss), metrics


class ExplodingPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="exploding-ae",
                config=_Cfg,
                build=ExplodesInEpochTwo,
                default_dataset="points3d",
                summary="NaN in epoch 2",
                train={"batch_size": 10},
            )
        )


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    registry.register_plugin(ExplodingPlugin(), "exploding")
    try:
        with pytest.raises(zoo.ZooError, match="loss became nan in epoch 2; kept the checkpoint of epoch 1"):
            train("exploding-ae", tmp_path / "run", epochs=3)
    finally:
        registry.unregister_plugin("exploding")
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_two_process_gloo_equals_one_process_with_twice_the_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # No samples held out for the anomaly threshold: the 100 points stay an even count, so both ranks'
    # shards hold every sample and the two runs see the same batches.
    common = ["train", "pca-ae", "--epochs", "3", "--device", "cpu", "--seed", "1", "--set", "score_holdout=0"]
    # --standalone: a local rendezvous on a free port, so parallel or repeated runs cannot collide.
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "zoo",
            *common,
            "--batch-size",
            "10",
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    run_zoo(*common, "--batch-size", "20", "--out", tmp_path / "single", check=True)
    a, b = load_file(tmp_path / "ddp" / "model.safetensors"), load_file(tmp_path / "single" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    record = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 3


# Errors a user can cause: one line, non-zero exit, nothing existing overwritten.


def test_unknown_model(tmp_path):
    result = run_zoo("train", "vea", "--out", tmp_path / "x")
    assert result.returncode == 2
    assert_one_line_error(result, "unknown model 'vea'", "did you mean 'vae'")


def test_unknown_set_key_lists_valid_keys(tmp_path):
    assert_one_line_error(
        run_zoo("train", "pca-ae", "--set", "latnet=3", "--out", tmp_path / "x"), "'latnet'", "latent"
    )
    assert not (tmp_path / "x").exists()


def test_wrong_value_type(tmp_path):
    assert_one_line_error(
        run_zoo("train", "pca-ae", "--set", "latent=two", "--out", tmp_path / "x"), "latent='two'", "int"
    )


def test_missing_dataset_names_the_places_searched(tmp_path):
    result = run_zoo(
        "train",
        "deep-ae",
        "--out",
        tmp_path / "x",
        env={"ZOO_DATA_DIR": str(tmp_path / "empty"), "HOME": str(tmp_path)},
    )
    if "not found" not in result.stderr:
        pytest.skip("mnist is installed system-wide on this machine")
    assert_one_line_error(result, "dataset 'mnist' not found", str(tmp_path / "empty" / "mnist"))


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory):
    return train("pca-ae", tmp_path_factory.mktemp("runs") / "pca", epochs=2)


def test_training_into_an_existing_run_overwrites_nothing(pca_run):
    before = {p.name: p.read_bytes() for p in pca_run.iterdir()}
    assert_one_line_error(run_zoo("train", "pca-ae", "--out", pca_run), "already holds a run", "--resume")
    assert {p.name: p.read_bytes() for p in pca_run.iterdir()} == before


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_eval_of_a_run_with_bad_weights_is_one_line(pca_run, tmp_path, damage):
    import shutil

    run = shutil.copytree(pca_run, tmp_path / "run")
    weights = run / "model.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])
    assert_one_line_error(run_zoo("eval", run), "model.safetensors", damage)


def test_eval_of_a_folder_that_is_not_a_run(tmp_path):
    assert_one_line_error(run_zoo("eval", tmp_path), "config.json")


def test_eval_json_matches_the_python_api(pca_run):
    metrics = json.loads(run_zoo("eval", pca_run, "--json", check=True).stdout)
    assert metrics == pytest.approx(evaluate(pca_run))
    assert load_run(pca_run).config.model == "pca-ae"
