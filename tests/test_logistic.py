"""VAEs on 8-bit colour: the discretized logistic likelihood (--set likelihood=logistic), its bins,
the importance-weighted estimate on a case with a known answer, and bits per dimension."""

import json
import math

import numpy as np
import pytest
import torch
from image_folders import write_images

import zoo
from zoo.data.by_path import make_request
from zoo.evaluate.likelihood import estimate_nll
from zoo.evaluate.metrics import evaluate, evaluate_nll
from zoo.models.variational import INITIAL_LOG_SCALE, LOG_SCALE_GAIN, logistic_log_prob
from zoo.train.loop import train

PIXELS = torch.arange(256, dtype=torch.float32) / 255


def reference_log_prob(x, mean, log_scale):
    """log P(x) per pixel in float64 from the logistic's CDF (its survival function above the mean,
    where 1 - CDF keeps the digits a difference of CDFs near 1 would lose)."""
    values, s, h = x.double() / 255, log_scale.exp(), 0.5 / 255
    cdf = lambda v: torch.sigmoid((v - mean) / s)  # noqa: E731
    survival = lambda v: torch.sigmoid((mean - v) / s)  # noqa: E731
    inner = torch.where(values > mean, survival(values - h) - survival(values + h), cdf(values + h) - cdf(values - h))
    return torch.where(x == 0, cdf(values + h), torch.where(x == 255, survival(values - h), inner)).log()


@pytest.mark.parametrize(
    "mean, log_scale", [(0.5, -2.0), (0.0, -5.0), (1.0, 0.5), (-0.3, -1.0), (0.73, -6.5), (1.4, -3.0)]
)
def test_the_256_probabilities_of_a_pixel_sum_to_one(mean, log_scale):
    log_p = logistic_log_prob(torch.tensor(mean), torch.tensor(log_scale), PIXELS)
    assert abs(float(log_p.double().exp().sum()) - 1) < 1e-5
    # Each bin is the logistic's mass between its edges, far into the tails (a float64 reference).
    expected = reference_log_prob(torch.arange(256), torch.tensor(mean).double(), torch.tensor(log_scale).double())
    usable = expected > -80  # where float64 itself still holds the mass
    torch.testing.assert_close(log_p.double()[usable], expected[usable], rtol=1e-4, atol=2e-3)


def test_the_importance_weighted_estimate_is_exact_when_the_posterior_is_the_prior_and_z_is_ignored():
    """q(z|x) = p(z) = N(0, I) and a decoder that ignores z make every weight p(x|z) p(z) / q(z|x)
    equal p(x): the estimate is exact for any k and any draw."""
    torch.manual_seed(0)
    model = zoo.create_model("vae", data_shape=(3, 4, 5), hidden=8, latent=3, likelihood="logistic").eval()
    with torch.no_grad():
        for layer in (model.to_mu, model.to_logvar, model.decoder[0]):
            layer.weight.zero_(), layer.bias.zero_()
        model.log_scale_param.copy_((torch.linspace(-4, -1, 60).view(3, 4, 5) - INITIAL_LOG_SCALE) / LOG_SCALE_GAIN)
        model.decoder[2].bias[60:].zero_()  # the decoder's own log-scales: 0, so log_scale alone
        mean = torch.sigmoid(model.decoder[2].bias[:60]).view(3, 4, 5)  # what the decoder gives for any z
    x = torch.randint(0, 256, (7, 3, 4, 5), dtype=torch.uint8)
    exact = -reference_log_prob(x, mean.double(), model.log_scale.detach().double()).flatten(1).sum(1)
    for k in (1, 50):
        report = estimate_nll(model, x, k=k, tune=False)
        assert report["nll"] == pytest.approx(float(exact.mean()), abs=1e-3)
        assert report["nll_stderr"] == pytest.approx(float(exact.std()) / math.sqrt(7), rel=1e-3)


def test_a_logistic_vae_trains_on_colour_and_reports_bits_per_dimension(tmp_path):
    write_images(tmp_path / "d", 24, size=(8, 8), seed=3)
    run = train(
        "vae",
        tmp_path / "run",
        data=make_request(tmp_path / "d", test_fraction=0.25),
        epochs=1,
        batch_size=6,
        sets={"likelihood": "logistic", "hidden": 16, "latent": 2},
    )
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    dims = 3 * 8 * 8
    assert record["test_bits_per_dim"] == pytest.approx(record["test_neg_elbo"] / (dims * math.log(2)))
    assert 2 < record["test_bits_per_dim"] < 12  # uniform pixels are 8 bits; a fresh model is near that
    metrics = evaluate(run)
    assert metrics["neg_elbo_bits_per_dim"] == pytest.approx(metrics["neg_elbo"] / (dims * math.log(2)))
    report = evaluate_nll(run, k=20)
    assert report["binarization"].startswith("none: the 8-bit test pixels") and "note" not in report
    assert report["nll_bits_per_dim"] == pytest.approx(report["nll"] / (dims * math.log(2)))
    assert report["nll"] <= metrics["neg_elbo"] + 3 * report["nll_stderr"] + 1


def test_logistic_with_binarized_training_or_an_unknown_likelihood_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 3, 8, 8), np.uint8))
    with pytest.raises(zoo.ZooUsageError, match="add --set binarize=none"):
        train(
            "conv-vae",
            tmp_path / "a",
            data=make_request(tmp_path / "x.npy"),
            epochs=1,
            sets={"likelihood": "logistic", "binarize": "dynamic"},
        )
    with pytest.raises(zoo.ZooUsageError, match="likelihood must be one of bernoulli, logistic, not 'gauss'"):
        train("vae", tmp_path / "b", data=make_request(tmp_path / "x.npy"), epochs=1, sets={"likelihood": "gauss"})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
