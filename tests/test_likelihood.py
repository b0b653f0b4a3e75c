"""`zoo eval --nll`: the importance-weighted estimate against a model whose log p(x) is exact, the
VAE's log-weights term by term, and the command line's report and errors."""

import json
import math
from dataclasses import dataclass

import pytest
import torch
from helpers import assert_one_line_error, run_zoo
from torch.distributions import MultivariateNormal, Normal

import zoo
from zoo.evaluate.likelihood import estimate_nll, fastest_chunks, log_likelihoods, plan_chunks
from zoo.models.base import AutoEncoder
from zoo.models.variational import bernoulli_log_prob
from zoo.train.loop import train


@dataclass
class _PPCAConfig:
    dim: int = 6
    latent: int = 2
    sigma: float = 0.5


class LinearGaussian(AutoEncoder):
    """Probabilistic PCA as a VAE: z ~ N(0, I), x | z ~ N(Wz + b, sigma^2 I), so that
    p(x) = N(b, WW^T + sigma^2 I) exactly. The encoder q(z|x) is the true posterior made deliberately
    wrong (mean shifted, spread widened), so that importance sampling has work to do."""

    def __init__(self, config, data_shape=(6,)):
        super().__init__(config, data_shape)
        gen = torch.Generator().manual_seed(0)
        self.latent_shape = (config.latent,)
        self.W = torch.nn.Parameter(torch.randn(config.dim, config.latent, generator=gen))
        self.b = torch.nn.Parameter(torch.randn(config.dim, generator=gen))
        self.sigma = config.sigma

    def marginal(self):
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.W.shape[0])
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def posterior(self, x):
        m = self.W.T @ self.W + self.sigma**2 * torch.eye(self.W.shape[1])
        mean = (x - self.b) @ self.W @ torch.linalg.inv(m).T
        std = (self.sigma**2 * torch.linalg.inv(m)).diagonal().sqrt()
        return mean + 0.3 * std, 1.5 * std.expand_as(mean)  # the deliberate mistakes

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return z @ self.W.T + self.b

    def log_importance_weights(self, x, k):
        mean, std = self.posterior(x)
        q = Normal(mean.unsqueeze(1), std.unsqueeze(1))
        z = q.sample((k,)).squeeze(2).transpose(0, 1)  # [B, k, latent]
        log_px = Normal(self.decode(z), self.sigma).log_prob(x.unsqueeze(1)).sum(-1)
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
        return log_px + log_pz - q.log_prob(z).sum(-1)


@pytest.fixture(scope="module")
def ppca():
    model = LinearGaussian(_PPCAConfig()).eval()
    with torch.no_grad():
        x = model.marginal().sample((300,))
        exact = model.marginal().log_prob(x).double()
    return model, x, exact


def estimates(model, x, k, budget=1 << 26):
    torch.manual_seed(k)
    return log_likelihoods(model, x, k, plan_chunks(model, x[:1], k, budget))


def test_the_estimate_approaches_the_exact_log_likelihood(ppca):
    model, x, exact = ppca
    gaps = {}
    for k in (1, 10, 100, 2000):
        diff = estimates(model, x, k) - exact  # per image: the estimator's error
        gaps[k] = (float(diff.mean()), float(diff.std() / math.sqrt(len(diff))))
    mean, stderr = gaps[2000]
    assert abs(mean) <= 3 * stderr, gaps
    # A lower bound in expectation: the k=1 estimate (the ELBO) lies clearly below the exact value.
    assert gaps[1][0] < -3 * gaps[1][1], gaps
    assert abs(gaps[2000][0]) < abs(gaps[10][0]) < abs(gaps[1][0]), gaps


def test_the_mean_estimate_does_not_decrease_with_k(ppca):
    model, x, _ = ppca
    ks = (1, 3, 10, 30, 100)
    per_image = [estimates(model, x, k) for k in ks]
    means = [float(v.mean()) for v in per_image]
    assert means[-1] > means[0], means
    # Between neighbouring k the gain is small: it may only dip by noise (3 standard errors).
    for low, high in zip(per_image, per_image[1:]):
        step = high - low
        assert float(step.mean()) >= -3 * float(step.std() / math.sqrt(len(step))), means


def test_samples_split_over_calls_when_the_budget_is_small(ppca):
    model, x, exact = ppca
    chunking = plan_chunks(model, x[:1], 500, budget=30_000)
    assert chunking.images == 1 and chunking.samples < 500
    torch.manual_seed(0)
    diff = log_likelihoods(model, x[:50], 500, chunking) - exact[:50]
    assert abs(float(diff.mean())) <= 3 * float(diff.std() / math.sqrt(50)) + 1e-3


def test_estimate_nll_reports_cost_and_counts(ppca):
    model, x, exact = ppca
    report = estimate_nll(model, x[:40], k=50)
    assert report["iw_samples"] == 50 and report["test_images"] == 40
    assert report["nll"] == pytest.approx(-float(exact[:40].mean()), abs=5 * report["nll_stderr"])
    assert report["seconds"] > 0 and report["peak_rss_bytes"] > 0 and report["peak_cuda_bytes"] is None


class _ScriptedCost(torch.nn.Module):
    """log_importance_weights whose calls cost a scripted time on a clock of its own, and create 4
    bytes per pair, so that the chunk search has a known fastest answer and no timing can flake."""

    def __init__(self, seconds_for_pairs):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seconds_for_pairs = seconds_for_pairs
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def log_importance_weights(self, x, k):
        self.now += self.seconds_for_pairs(len(x) * k)
        return torch.zeros(len(x), k)


@pytest.mark.parametrize(
    "cost, expected",
    [
        (lambda pairs: 0.004, (4, 1000)),  # a fixed cost per call: the largest chunk is cheapest per pair
        (lambda pairs: (pairs / 4000) ** 2 * 0.02, (1, 250)),  # cost growing faster than the work: the smallest
        (lambda pairs: pairs * (1e-6 + abs(pairs - 1000) * 1e-9), (1, 1000)),  # a sweet spot in between
    ],
)
def test_the_chunk_search_keeps_the_fastest_size_within_the_budget(cost, expected):
    budget = 4 * 4000  # 4 bytes a pair: chunks of 4000 pairs down to 250
    model = _ScriptedCost(cost)
    chunking = fastest_chunks(model, torch.zeros(10, 3), 1000, budget, clock=model.clock)
    assert (chunking.images, chunking.samples) == expected
    assert chunking.images * chunking.samples * chunking.pair_bytes <= budget


def test_the_chunk_search_never_plans_more_images_than_there_are():
    chunking = fastest_chunks(_ScriptedCost(lambda pairs: 0.0), torch.zeros(3, 3), 10, 4 * 4000)
    assert (chunking.images, chunking.samples) == (3, 10)


def test_draws_split_evenly_over_calls():
    # 1000 draws with room for 804 per call: two calls of 500, not 804 and a slow 196.
    assert plan_chunks(_ScriptedCost(lambda pairs: 0.0), torch.zeros(1, 3), 1000, 4 * 804).samples == 500


def test_without_the_search_the_estimate_repeats_exactly(ppca):
    model, x, _ = ppca
    first, second = (estimate_nll(model, x[:30], k=20, tune=False) for _ in range(2))
    assert first["nll"] == second["nll"]
    assert (first["chunk_images"], first["chunk_samples"]) == (second["chunk_images"], second["chunk_samples"])


def test_bernoulli_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    logits, x = torch.randn(3, 4, 10) * 3, torch.rand(3, 10).bernoulli()
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x.unsqueeze(1).expand(3, 4, 10)).sum(-1)
    torch.testing.assert_close(bernoulli_log_prob(logits, x), expected)


@pytest.mark.parametrize("grad", [False, True], ids=["evaluation", "training"])
def test_bernoulli_log_prob_on_a_whole_image_with_extreme_logits(grad):
    """784 pixels (halved four times in the product) and logits out to +-80, with and without a
    gradient flowing: the value and its gradient match the plain float64 formula."""
    torch.manual_seed(0)
    logits = (torch.randn(2, 5, 784) * 20).clamp(-80, 80)
    x = torch.rand(2, 784).bernoulli()
    reference = logits.double().requires_grad_(grad)
    expected = torch.einsum("bkd,bd->bk", reference, x.double()) - torch.nn.functional.softplus(reference).sum(-1)
    ours = logits.clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        value = bernoulli_log_prob(ours, x)
    torch.testing.assert_close(value.double(), expected.detach(), rtol=0, atol=2e-3)
    if grad:
        value.sum().backward(), expected.sum().backward()
        torch.testing.assert_close(ours.grad.double(), reference.grad, rtol=0, atol=1e-5)


def test_vae_log_weights_average_to_its_elbo():
    """E_q[log w] is the ELBO: the sampled log p(z) - log q(z|x) averages to minus the analytic KL."""
    torch.manual_seed(0)
    model = zoo.create_model("vae", hidden=32, latent=4).eval()
    x = torch.rand(3, 1, 28, 28).bernoulli()
    with torch.no_grad():
        _, log_ratio = model.sampled_terms(x, 20_000)
        mu, logvar = model.posterior(x)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    torch.testing.assert_close(-log_ratio.mean(1), kl, atol=0.02, rtol=0.02)


def test_kl_warmup_ramps_the_weight_in_training_only():
    model = zoo.create_model("vae", kl_warmup_epochs=4.0).train()
    weights = []
    for epochs_done in (0.0, 1.0, 2.0, 4.0, 9.0):
        model.epochs_done = epochs_done
        weights.append(model.kl_weight())
    assert weights == [0.0, 0.25, 0.5, 1.0, 1.0]
    model.epochs_done = 1.0
    assert model.eval().kl_weight() == 1.0  # test losses are the true bound


def test_iwae_objective_is_at_least_as_tight_as_the_elbo():
    torch.manual_seed(0)
    model = zoo.create_model("vae", hidden=32, latent=4, iw_samples=50).eval()
    x = torch.rand(8, 1, 28, 28).bernoulli()
    with torch.no_grad():
        loss, metrics = model.loss(x)
    assert loss < metrics["neg_elbo"]  # -IWAE bound below -ELBO (the same draws)


def test_nll_of_a_model_without_a_likelihood_is_one_line(tmp_path):
    run = train("deep-ae", tmp_path / "ae", epochs=1, subset=64, batch_size=64)
    result = run_zoo("eval", run, "--nll", "--iw-samples", "5")
    assert_one_line_error(
        result, "deep-ae has no likelihood: --nll needs a model that implements log_importance_weights"
    )


def test_cli_json_report_has_every_field_and_the_binarization(tmp_path):
    run = train("vae", tmp_path / "vae", epochs=1, subset=128, batch_size=64, sets={"binarize": "dynamic"})
    assert json.loads((run / "config.json").read_text())["train_config"]["binarize"] == "dynamic"
    result = run_zoo("eval", run, "--nll", "--iw-samples", "20", "--nll-images", "30", "--json", check=True)
    report = json.loads(result.stdout)
    for key in (
        "nll",
        "nll_stderr",
        "iw_samples",
        "test_images",
        "binarization",
        "train_binarize",
        "test_binarization_seed",
        "seconds",
        "images_per_second",
        "peak_rss_bytes",
        "peak_cuda_bytes",
        "chunk_images",
        "chunk_samples",
        "model",
        "dataset",
        "device",
        "epochs",
    ):
        assert key in report, key
    assert report["iw_samples"] == 20 and report["test_images"] == 30 and report["train_binarize"] == "dynamic"
    assert report["test_binarization_seed"] == 0 and "seed 0" in report["binarization"]
    assert 50 < report["nll"] < 800 and report["nll_stderr"] > 0 and "note" not in report
    text = run_zoo("eval", run, "--nll", "--iw-samples", "5", "--nll-images", "10", check=True).stdout
    assert "NLL" in text and "k=5" in text and "10 test images" in text and "seed 0" in text
    # k=5 on 10 images fits one call at every size tried: the chunk the report names is all of it.
    assert "chunks         10 image(s) x 5 draws per call" in text


def test_nll_of_a_run_trained_on_grey_levels_binarizes_the_test_split_and_says_so(tmp_path):
    from zoo.evaluate.metrics import evaluate_nll

    run = train("vae", tmp_path / "vae", epochs=1, subset=64, batch_size=64)
    report = evaluate_nll(run, k=4, images=8)
    assert report["train_binarize"] == "none" and "binarized for the NLL protocol" in report["note"]
    assert report["test_images"] == 8
