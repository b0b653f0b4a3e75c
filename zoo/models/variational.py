"""What every VAE with a diagonal Gaussian posterior, a N(0, I) prior and a Bernoulli or discretized
logistic decoder shares: its objectives (the ELBO, the k-sample importance-weighted bound of Burda et
al., KL warm-up) and the importance log-weights ``zoo eval --nll`` uses. An architecture only
supplies ``posterior(x)`` and ``decode_logits(z)``.

Config fields read here (each optional; a config without them trains the plain Bernoulli ELBO):

- ``iw_samples``: k of the training objective, log (1/k) sum_j w_j; 1 is the plain ELBO.
- ``kl_warmup_epochs``: the weight of log p(z) - log q(z|x) ramps linearly from 0 to 1 over this many
  epochs (Sønderby et al., 2016); 0 turns warm-up off.
- ``likelihood``: "bernoulli" (binarized digits) or "logistic": 8-bit pixels, each a logistic with
  the decoder's mean and a learned log-scale, its mass split into the 256 bins k/255 (the bins at 0
  and 255 take the tails), as in PixelCNN++ and IAF's VAEs. Right for photographs, where a
  Bernoulli's "probability of a grey level" is no likelihood at all.
- ``score``: the anomaly score, "mse" (the reconstruction error from the posterior mean, the
  default) or "neg_elbo" (the negative ELBO at the posterior mean).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from zoo.models.base import AutoEncoder, GaussianPrior


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) summed per image: logits [B, k, D], x [B, D] -> [B, k].

    x·l - softplus(l) is the negative BCE on logits; x is broadcast over the k draws by a batched
    matrix product instead of being copied k times. In fp32 even under autocast: a bf16 sum over 784
    pixels would be off by about a nat."""
    with torch.autocast(logits.device.type, enabled=False):
        logits, x = logits.float(), x.float()
        return torch.einsum("bkd,bd->bk", logits, x) - F.softplus(logits).sum(-1)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension (broadcasting), in nats."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def uniform_from_normal(eps: torch.Tensor) -> torch.Tensor:
    """The standard normal CDF: eps ~ N(0, 1) -> u ~ U(0, 1). An exported generator takes only
    normal noise; a discrete choice (a mixture component, a code) turns one draw into a uniform."""
    return 0.5 * (1 + torch.erf(eps * (0.5**0.5)))


def pick(weights_cumsum: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw: cumulative weights [B, K] (or [K]) and uniforms [B] -> one-hot [B, K] of the
    first index whose cumulative weight reaches u (the last one if rounding leaves u above all)."""
    count = (weights_cumsum < u.unsqueeze(-1)).sum(-1).clamp(max=weights_cumsum.shape[-1] - 1)
    return (torch.arange(weights_cumsum.shape[-1], device=u.device) == count.unsqueeze(-1)).to(u.dtype)


LIKELIHOODS = ("bernoulli", "logistic")
SCORES = ("neg_elbo", "mse")  # the anomaly scores a VAE offers (``score``)
HALF_BIN = 0.5 / 255  # 8-bit pixels k/255: each bin is k/255 +- HALF_BIN
MIN_LOG_SCALE = -7.0  # below this a bin's mass is all-or-nothing and its gradient vanishes
INITIAL_LOG_SCALE = -2.0  # a spread of about a tenth of the pixel range to begin with
# Each pixel's log-scale is INITIAL_LOG_SCALE + LOG_SCALE_GAIN * a per-pixel parameter + what the
# decoder predicts for this image. Why both: one learned spread per pixel, the same for every image,
# cannot be sharp where a reconstruction is sure (a flat background) and wide where it is not (an
# edge), so it settles at the typical error: 5 to 7 bits per dimension whatever the means learn. And
# Adam moves a parameter by about lr a step whatever its gradient, so a raw log-scale at lr 2e-3 took
# ~1,500 steps to leave -2, more than a small folder's training gave it; the gain lets it move in tens.
LOG_SCALE_GAIN = 25.0


def logistic_log_prob(mean: torch.Tensor, log_scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log P(x) per element for 8-bit pixels x = k/255 under a logistic(mean, exp(log_scale)) split
    into the 256 bins: sigma((x + h - mean) / s) - sigma((x - h - mean) / s), the first bin from
    -inf and the last to +inf, so that the 256 probabilities sum to 1. Computed in logits space for
    stability (PixelCNN++'s discretized logistic), in fp32 even under autocast."""
    with torch.autocast(mean.device.type, enabled=False):
        mean, x = mean.float(), x.float()
        log_scale = log_scale.float().clamp(min=MIN_LOG_SCALE)
        inv_scale = torch.exp(-log_scale)
        upper, lower = inv_scale * (x - mean + HALF_BIN), inv_scale * (x - mean - HALF_BIN)
        # sigma(upper) - sigma(lower), written as sigma(a) - sigma(b) with both in the near tail, where
        # log sigma(v) = -softplus(-v) keeps its digits: above the mean it is sigma(-lower) - sigma(-upper).
        above = x > mean
        a, b = torch.where(above, -lower, upper), torch.where(above, -upper, lower)
        log_a, log_b = -F.softplus(-a), -F.softplus(-b)
        tiny = torch.finfo(torch.float32).tiny
        log_mid = log_a + torch.log(-torch.expm1(log_b - log_a).clamp(max=-tiny))
        first, last = -F.softplus(-upper), -F.softplus(lower)  # log sigma(upper); log (1 - sigma(lower))
        return torch.where(x < HALF_BIN, first, torch.where(x > 1 - HALF_BIN, last, log_mid))


class VariationalAutoEncoder(AutoEncoder):
    """q(z|x) = N(mu, diag(exp(logvar))), p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(logits)).

    Subclasses set ``latent_shape`` to ``(latent,)`` and implement ``posterior(x) -> (mu, logvar)``,
    each [B, latent], and ``decode_logits(z) -> [N, *output_shape]``: ``data_shape`` for the Bernoulli;
    with ``likelihood="logistic"`` twice the channels, the means' logits then the log-scales (added
    to ``log_scale``, one learned value per pixel)."""

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.likelihood = getattr(config, "likelihood", "bernoulli")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, not {self.likelihood!r}")
        if self.likelihood == "logistic":
            self.log_scale_param = nn.Parameter(torch.zeros(self.data_shape))
        self.score_kind = getattr(config, "score", "mse")
        if self.score_kind not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, not {self.score_kind!r}")

    @property
    def log_scale(self) -> torch.Tensor:
        """Each pixel's learned log-scale (``likelihood="logistic"``) before the decoder's own part."""
        return INITIAL_LOG_SCALE + LOG_SCALE_GAIN * self.log_scale_param

    @property
    def output_shape(self) -> tuple:
        """What ``decode_logits`` returns per code: ``data_shape``, with twice the channels (twice the
        length for vectors) under the logistic likelihood: the means' logits, then the log-scales."""
        if self.likelihood != "logistic":
            return self.data_shape
        return (2 * self.data_shape[0], *self.data_shape[1:])

    def decode_params(self, z: torch.Tensor):
        """(the means' logits [N, *data_shape], the log-scales [N, *data_shape] or None)."""
        out = self.decode_logits(z)
        if self.likelihood != "logistic":
            return out, None
        logits, scale = out.split(self.data_shape[0], dim=1)
        return logits, self.log_scale + scale

    @property
    def binarized_data(self) -> bool:
        """Whether the likelihood is of binary pixels (so --nll measures the binarized test split)."""
        return self.likelihood == "bernoulli"

    def log_px(self, logits: torch.Tensor, x: torch.Tensor, log_scale=None) -> torch.Tensor:
        """log p(x|z) summed per image: logits [N, D] (or [B, k, D]), x [N, D] ([B, D]) -> [N] ([B, k]);
        ``log_scale`` shaped as ``logits`` under the logistic likelihood."""
        if self.likelihood == "bernoulli":
            if logits.dim() == 3:
                return bernoulli_log_prob(logits, x)
            return -F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none").sum(-1)
        x = x.unsqueeze(1) if logits.dim() == 3 else x
        return logistic_log_prob(torch.sigmoid(logits), log_scale, x).sum(-1)

    def log_px_at(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image for codes z [N, latent] and images x [N, ...]."""
        logits, log_scale = self.decode_params(z)
        return self.log_px(logits.flatten(1), x.flatten(1), None if log_scale is None else log_scale.flatten(1))

    def bits_per_dim(self, nats: torch.Tensor) -> torch.Tensor:
        return nats / (self.data_dim * math.log(2))

    def posterior(self, x: torch.Tensor):
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x):
        return self.posterior(x)[0]  # the posterior mean: a deterministic code

    def encoder_outputs(self, x):
        mu, logvar = self.posterior(x)
        return {"mu": mu, "logvar": logvar}

    def decode(self, z):
        return torch.sigmoid(self.decode_params(z)[0])

    def make_prior(self):
        return GaussianPrior(self.latent_dim, fixed=True)

    def kl_weight(self) -> float:
        """The warm-up weight of the KL part: 1 outside training and once warm-up is over."""
        warmup = float(getattr(self.config, "kl_warmup_epochs", 0))
        if not self.training or warmup <= 0:
            return 1.0
        return min(1.0, self.epochs_done / warmup)

    def gaussian_posterior(self, x):
        """mu and logvar in fp32 even under autocast: a bf16 sum of KL or log-ratio terms over the
        latent dimensions would be off by a noticeable fraction of a nat (a no-op in fp32)."""
        mu, logvar = self.posterior(x)
        return mu.float(), logvar.float()

    def neg_elbo_terms(self, x):
        """Per-image reconstruction and KL terms in nats, with one z drawn from the posterior."""
        mu, logvar = self.gaussian_posterior(x)
        eps = torch.randn_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)  # reparameterisation
        recon = -self.log_px_at(z, x)
        return recon, self.kl_divergence(z, eps, mu, logvar)

    def kl_divergence(self, z, eps, mu, logvar):
        """KL(q(z|x) || p(z)) per image [B] for one draw z = mu + sigma * eps. With p = N(0, I) it is
        analytic: -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2). A model with another prior (a
        mixture) overrides ``log_prior_ratio`` and this, e.g. with the one-draw estimate."""
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)

    def log_prior_ratio(self, z, eps, logvar):
        """log p(z) - log q(z|x) for draws z = mu + sigma * eps (any leading shape, latent last).
        With p = N(0, I) the 2 pi terms cancel; a model with another prior overrides this."""
        return 0.5 * (eps.pow(2) - z.pow(2)).sum(-1) + 0.5 * logvar.sum(-1)

    def sampled_terms(self, x, k: int):
        """log p(x|z_j) and log p(z_j) - log q(z_j|x), each [B, k], for k draws z_j ~ q(z|x)."""
        mu, logvar = self.gaussian_posterior(x)
        eps = torch.randn(mu.shape[0], k, mu.shape[1], device=mu.device, dtype=mu.dtype)
        z = mu.unsqueeze(1) + eps * torch.exp(0.5 * logvar).unsqueeze(1)
        logits, log_scale = self.decode_params(z.flatten(0, 1))
        log_scale = None if log_scale is None else log_scale.reshape(len(x), k, -1)
        log_px = self.log_px(logits.reshape(len(x), k, -1), x.flatten(1), log_scale)
        return log_px, self.log_prior_ratio(z, eps, logvar.unsqueeze(1))

    def log_importance_weights(self, x, k):
        log_px, log_ratio = self.sampled_terms(x, k)
        return log_px + log_ratio

    def loss(self, x):
        k, beta = int(getattr(self.config, "iw_samples", 1)), self.kl_weight()
        if k <= 1:
            # The plain ELBO with the analytic KL: less noisy than the sampled one.
            recon, kl = self.neg_elbo_terms(x)
            recon, kl = recon.mean(), kl.mean()
            neg_elbo = recon + kl
            loss = neg_elbo if beta == 1.0 else recon + beta * kl
            return loss, {"recon": recon, "kl": kl, "neg_elbo": neg_elbo, "bits_per_dim": self.bits_per_dim(neg_elbo)}
        return self.iwae_loss(x, k, beta)

    def iwae_loss(self, x, k: int, beta: float = 1.0):
        """The k-sample importance-weighted bound of Burda et al. and its metrics, from ``sampled_terms``
        (so any model that gives log p(x|z) and log p(z) - log q(z|x) per draw trains with it)."""
        log_px, log_ratio = self.sampled_terms(x, k)
        # The importance-weighted bound log (1/k) sum_j w_j; warm-up scales the log-ratio inside w.
        bound = torch.logsumexp(log_px + beta * log_ratio, dim=1) - math.log(k)
        recon, kl = -log_px.mean(), -log_ratio.mean()
        return -bound.mean(), {
            "recon": recon,
            "kl": kl,
            "neg_elbo": recon + kl,
            "bits_per_dim": self.bits_per_dim(recon + kl),
        }

    @property
    def score_definition(self) -> str:
        if self.score_kind == "mse":
            return "mean squared reconstruction error per element (the code at the posterior mean)"
        return "negative ELBO at the posterior mean (z = mu, analytic KL), nats per dimension"

    def score(self, x):
        """Both scores take the code at the posterior mean instead of a draw, so they are
        deterministic (a drawn z would give each input a different score on every call).
        ``score=mse`` (the default): the reconstruction error, which separated held-out normal
        inputs from the rest best. ``score=neg_elbo``: the negative ELBO, whose KL term also counts
        codes far from where the prior puts the training data; per dimension, so the numbers stay
        near 1 and float32 keeps their digits (it orders inputs as the -ELBO itself does)."""
        if self.score_kind == "mse":
            return super().score(x)
        mu, logvar = self.gaussian_posterior(x)
        recon = -self.log_px_at(mu, x)
        kl = self.kl_divergence(mu, torch.zeros_like(mu), mu, logvar)
        return (recon + kl) / self.data_dim

    def eval_terms(self, x):
        recon, kl = self.neg_elbo_terms(x)
        return {"neg_elbo": recon + kl, "kl": kl, "neg_elbo_bits_per_dim": self.bits_per_dim(recon + kl)}
