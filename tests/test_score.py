"""Anomaly scores: the project's AUROC and average precision against scikit-learn's, the threshold's
false-positive rate on held-out normal data, `zoo train --labels`, `zoo score`'s CSV, picture and
report, and its errors as one line each."""

import contextlib
import csv
import io
import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_zoo
from sklearn.metrics import average_precision_score, roc_auc_score

from zoo.anomaly.metrics import auroc, average_precision, threshold_at_fpr


@pytest.mark.parametrize("seed", range(4))
def test_auroc_and_average_precision_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    # Coarse scores so that many tie, across classes too: ties are where implementations differ.
    scores = rng.integers(0, 12, 400).astype(float) + rng.normal(0, 0.3, 400) * (seed % 2)
    is_anomaly = rng.random(400) < (0.1 + 0.2 * seed)
    scores[is_anomaly] += 2
    assert auroc(scores, is_anomaly) == pytest.approx(roc_auc_score(is_anomaly, scores), abs=1e-12)
    assert average_precision(scores, is_anomaly) == pytest.approx(
        average_precision_score(is_anomaly, scores), abs=1e-12
    )


def test_auroc_of_a_fixed_case():
    # Anomalies at 3 and 1, normal at 2, 0 and 1: of the 6 pairs, 3 > each normal (3), 1 > 0 (1),
    # 1 = 1 (a half), 1 < 2: 4.5 / 6.
    assert auroc([3, 1, 2, 0, 1], [1, 1, 0, 0, 0]) == 0.75


def test_threshold_at_fpr_leaves_that_fraction_above():
    scores = np.random.default_rng(0).normal(size=10_000)
    for fpr in (0.01, 0.05, 0.2):
        assert np.mean(scores > threshold_at_fpr(scores, fpr)) == pytest.approx(fpr, abs=1e-3)


def _train(tmp_path, name, **overrides):
    from zoo.train.loop import train

    with contextlib.redirect_stderr(io.StringIO()):
        return train(name, tmp_path / name, epochs=1, device="cpu", seed=0, **overrides)


def test_the_threshold_flags_its_false_positive_rate_of_unseen_normal_data(tmp_path):
    from zoo.anomaly.scores import score_split
    from zoo.core.registry import get_dataset
    from zoo.data.loading import load_splits
    from zoo.train.run_folder import load_run, read_threshold

    run = _train(tmp_path, "deep-ae", sets={"score_fpr": "0.1", "score_holdout": "0.25"})
    record = read_threshold(run)
    assert record["fpr"] == 0.1 and record["held_out_samples"] == 128
    assert record["definition"] == "mean squared reconstruction error per element"
    # The test split is normal data the threshold never saw: about 10% of it lies above.
    test = load_splits(get_dataset("mnist"), None, 0, "cpu").test
    flagged = np.mean(score_split(load_run(run).model, test) > record["threshold"])
    assert 0.04 <= flagged <= 0.2, flagged


def test_labels_train_on_those_labels_and_score_reports_auroc_per_label(tmp_path):
    from zoo.core.registry import get_dataset
    from zoo.data.loading import load_splits
    from zoo.evaluate.score import score_run

    run = _train(tmp_path, "deep-ae", labels=["3", "7"])
    config = json.loads((run / "config.json").read_text())
    assert config["train_config"]["labels"] == ["3", "7"]
    # Trained on the 3s and 7s only: the held-out 5% (the rest was trained on) is of their count.
    train_labels = load_splits(get_dataset("mnist"), None, 0, "cpu").train_labels
    normal_count = int(torch.isin(train_labels, torch.tensor([3, 7])).sum())
    assert json.loads((run / "threshold.json").read_text())["held_out_samples"] == round(normal_count * 0.05)
    report = score_run(run, normal=["3", "7"], top=20)
    rows = list(csv.DictReader(open(report["csv"])))
    scores = np.array([float(r["score"]) for r in rows])
    assert len(rows) == 256 and np.all(np.diff(scores) <= 0)  # the whole test split, most anomalous first
    assert [int(r["rank"]) for r in rows] == list(range(1, 257))
    is_anomaly = np.array([r["label"] not in ("3", "7") for r in rows])
    separation = report["separation"]
    assert separation["auroc"] == pytest.approx(roc_auc_score(is_anomaly, scores), abs=1e-9)
    assert separation["average_precision"] == pytest.approx(average_precision_score(is_anomaly, scores), abs=1e-9)
    assert set(separation["per_label"]) == {str(k) for k in range(10)} - {"3", "7"}
    assert separation["normal_samples"] == int((~is_anomaly).sum())
    assert [r["anomalous"] for r in rows[:1]] == ["true"] and "anomalous" in rows[-1]
    from PIL import Image

    assert Image.open(report["picture"]).size[0] > Image.open(report["picture"]).size[1] > 0


def test_a_vae_scores_its_reconstruction_error_or_asked_its_negative_elbo_at_the_posterior_mean():
    from zoo.core.registry import create_model

    torch.manual_seed(0)
    model = create_model("vae", score="neg_elbo").eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        first, again = model.score(x), model.score(x)
        mu, logvar = model.posterior(x)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(
            model.decode_logits(mu).flatten(1), x.flatten(1), reduction="none"
        ).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    assert torch.equal(first, again)  # deterministic
    torch.testing.assert_close(first, (recon + kl) / 784)
    mse_model = create_model("vae").eval()  # the default
    mse_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mse_model.score(x), (model.decode(mu) - x).pow(2).flatten(1).mean(1))
    assert "reconstruction error" in mse_model.score_definition and "ELBO" in model.score_definition


def test_score_and_labels_errors_are_one_line(tmp_path):
    result = run_zoo("train", "deep-ae", "--labels", "3", "--labels", "11", "--epochs", "1", "--out", tmp_path / "bad")
    assert_one_line_error(result, "--labels 11", "no such label", "0, 1, 2")
    assert not (tmp_path / "bad").exists()
    run = _train(tmp_path, "deep-ae", subset=64)
    assert_one_line_error(run_zoo("score", run, "--normal", "eleven"), "--normal eleven", "no such label")
    unlabelled = tmp_path / "digits.npy"
    np.save(unlabelled, np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8))
    assert_one_line_error(run_zoo("score", run, "--data", unlabelled, "--normal", "0"), "--normal", "has no labels")


def test_a_folders_scores_name_each_file(tmp_path):
    from PIL import Image

    from zoo.evaluate.score import score_run
    from zoo.train.run_folder import load_run

    rng = np.random.default_rng(0)
    for label, spread, count in (("good", 60, 30), ("bad", 255, 10)):
        (tmp_path / "parts" / label).mkdir(parents=True)
        for i in range(count):
            Image.fromarray((rng.random((16, 16)) * spread).astype(np.uint8)).save(
                tmp_path / "parts" / label / f"{i}.png"
            )
    from zoo.data.by_path import make_request
    from zoo.train.loop import train

    with contextlib.redirect_stderr(io.StringIO()):
        run = train(
            "deep-ae", tmp_path / "run", data=make_request(tmp_path / "parts"), labels=["good"], epochs=1, device="cpu"
        )
    report = score_run(run, data=tmp_path / "parts", split="train", top=0)
    rows = list(csv.DictReader(open(report["csv"])))
    assert len(rows) == 36 and all(r["file"].split("/")[0] == r["label"] for r in rows)  # 10% is the test split
    # Without --split, --data is new images to check: every one of them is scored, with its path.
    everything = list(csv.DictReader(open(score_run(run, data=tmp_path / "parts", top=0, out=tmp_path / "all")["csv"])))
    assert sorted(r["file"] for r in everything) == sorted(
        str(p.relative_to(tmp_path / "parts")) for p in (tmp_path / "parts").rglob("*.png")
    )
    model = load_run(run).model
    for row in rows[:3] + rows[-3:] + everything[:2]:  # each row's score is that file's
        pixels = np.asarray(Image.open(tmp_path / "parts" / row["file"]), np.float32)[None, None] / 255
        with torch.no_grad():
            assert float(model.score(torch.from_numpy(pixels))) == pytest.approx(float(row["score"]), rel=1e-5)
