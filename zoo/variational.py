"""What every VAE with a diagonal Gaussian posterior, a N(0, I) prior and a Bernoulli decoder shares:
its objectives (the ELBO, the k-sample importance-weighted bound of Burda et al., KL warm-up) and the
importance log-weights ``zoo eval --nll`` uses. An architecture only supplies ``posterior(x)`` and
``decode_logits(z)``.

Config fields read here (each optional; a config without them trains the plain ELBO):

- ``iw_samples``: k of the training objective, log (1/k) sum_j w_j; 1 is the plain ELBO.
- ``kl_warmup_epochs``: the weight of log p(z) - log q(z|x) ramps linearly from 0 to 1 over this many
  epochs (Sønderby et al., 2016); 0 turns warm-up off.
"""

import math

import torch
from torch.nn import functional as F

from .model import AutoEncoder, GaussianPrior


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) summed per image: logits [B, k, D], x [B, D] -> [B, k].

    x·l - softplus(l) is the negative BCE on logits; x is broadcast over the k draws by a batched
    matrix product instead of being copied k times. In fp32 even under autocast: a bf16 sum over 784
    pixels would be off by about a nat."""
    with torch.autocast(logits.device.type, enabled=False):
        logits, x = logits.float(), x.float()
        return torch.einsum("bkd,bd->bk", logits, x) - F.softplus(logits).sum(-1)


class VariationalAutoEncoder(AutoEncoder):
    """q(z|x) = N(mu, diag(exp(logvar))), p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(logits)).

    Subclasses set ``latent_shape`` to ``(latent,)`` and implement ``posterior(x) -> (mu, logvar)``,
    each [B, latent], and ``decode_logits(z) -> [N, *data_shape]``."""

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
        return torch.sigmoid(self.decode_logits(z))

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
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        # Bernoulli likelihood: BCE on logits (stable, unlike BCE on sigmoid outputs), summed per image.
        recon = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="none").flatten(1).sum(1)
        # KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return recon, kl

    def sampled_terms(self, x, k: int):
        """log p(x|z_j) and log p(z_j) - log q(z_j|x), each [B, k], for k draws z_j ~ q(z|x)."""
        mu, logvar = self.gaussian_posterior(x)
        eps = torch.randn(mu.shape[0], k, mu.shape[1], device=mu.device, dtype=mu.dtype)
        z = mu.unsqueeze(1) + eps * torch.exp(0.5 * logvar).unsqueeze(1)
        logits = self.decode_logits(z.flatten(0, 1)).view(len(x), k, -1)
        log_px = bernoulli_log_prob(logits, x.flatten(1))
        # log N(z; 0, I) - log N(z; mu, sigma^2), with z = mu + sigma * eps: the 2 pi terms cancel.
        log_ratio = 0.5 * (eps.pow(2) - z.pow(2)).sum(-1) + 0.5 * logvar.sum(-1, keepdim=True)
        return log_px, log_ratio

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
            return loss, {"recon": recon, "kl": kl, "neg_elbo": neg_elbo}
        log_px, log_ratio = self.sampled_terms(x, k)
        # The importance-weighted bound log (1/k) sum_j w_j; warm-up scales the log-ratio inside w.
        bound = torch.logsumexp(log_px + beta * log_ratio, dim=1) - math.log(k)
        recon, kl = -log_px.mean(), -log_ratio.mean()
        return -bound.mean(), {"recon": recon, "kl": kl, "neg_elbo": recon + kl}

    def eval_terms(self, x):
        recon, kl = self.neg_elbo_terms(x)
        return {"neg_elbo": recon + kl, "kl": kl}
