"""The anomaly threshold is an order statistic whose expected false-positive rate on new normal
inputs is the one asked, says so when too few held-out samples allow it, and export refuses a
threshold set on another score than the model's."""

import numpy as np
import pytest
from helpers import assert_one_line_error, run_zoo

from zoo.anomaly.scores import order_statistic_threshold
from zoo.train.run_folder import write_threshold, write_untrained_run


def test_the_threshold_leaves_the_asked_rate_above_it_on_new_inputs():
    rng = np.random.default_rng(0)
    exceeded = []
    for _ in range(2000):
        held_out, new = rng.random(199), rng.random(50)
        threshold, expected = order_statistic_threshold(held_out, 0.05)
        exceeded.append(np.mean(new > threshold))
    assert expected == pytest.approx(0.05)
    assert np.mean(exceeded) == pytest.approx(0.05, abs=0.004)


def test_too_few_held_out_samples_take_the_largest_and_say_what_it_gives():
    threshold, expected = order_statistic_threshold(np.arange(10.0), 0.01)
    assert threshold == 9.0 and expected == pytest.approx(1 / 11)


def test_export_refuses_a_threshold_set_on_another_score(tmp_path):
    run = write_untrained_run(tmp_path / "run", "deep-ae")
    write_threshold(run, {"definition": "negative ELBO, nats per dimension", "threshold": 1.0, "fpr": 0.01})
    assert_one_line_error(run_zoo("export", run), "threshold was set on another score", "retrain")


def test_zoo_score_says_plainly_that_conv_ae_is_no_anomaly_scorer(tmp_path):
    from tiny_data import write_tiny_idx

    write_tiny_idx(tmp_path / "mnist", n_train=64, n_test=32)
    run = tmp_path / "run"
    trained = run_zoo("train", "conv-ae", "--data-dir", tmp_path / "mnist", "--epochs", "1", "--out", run)
    assert trained.returncode == 0, trained.stderr
    scored = run_zoo("score", run, "--data-dir", tmp_path / "mnist", "--top", "0")
    assert scored.returncode == 0 and "conv-ae is not an anomaly scorer" in scored.stderr
