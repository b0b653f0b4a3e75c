"""The VAE with the VampPrior (Tomczak and Welling, 2018): the prior is the mixture of the
posteriors of K learned pseudo-inputs, p(z) = 1/K sum_k q(z | u_k). The ELBO's KL term has no closed
form, so it is the one-draw estimate log q(z|x) - log p(z); the importance weights of ``zoo eval
--nll`` and the IWAE objective come from ``zoo.models.variational`` with this prior.

The exported generator takes latent + 1 normals: the last picks the pseudo-input (a uniform by its
cumulative weight), the rest draw z from its posterior."""

import math

import torch
from torch import nn

from zoo.models.base import GaussianPrior
from zoo.models.layers import mlp
from zoo.models.variational import VariationalAutoEncoder, pick, uniform_from_normal


class VampVAE(VariationalAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        hidden = tuple(config.hidden)
        self.latent_shape = (config.latent,)
        self.encoder = mlp((self.data_dim, *hidden), last_activation=nn.ReLU)
        self.to_mu = nn.Linear(hidden[-1], config.latent)
        self.to_logvar = nn.Linear(hidden[-1], config.latent)
        self.decoder = mlp((config.latent, *hidden[::-1], self.data_dim))
        # Pseudo-inputs in data space, kept in [0, 1] by a hard tanh as in the paper, started near grey.
        self.pseudo_inputs = nn.Parameter(0.5 + 0.01 * torch.randn(config.pseudo_inputs, *self.data_shape))

    def make_prior(self):
        # Only the decoder's metadata sampler uses this: a Gaussian fitted to the codes. The exact
        # prior (the mixture) is sampled by ``generate``, in generator.onnx.
        return GaussianPrior(self.latent_dim, fixed=False)

    def posterior(self, x):
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_logvar(h).clamp(-12, 8)

    def decode_logits(self, z):
        return self.decoder(z).view(-1, *self.data_shape)

    def prior_components(self):
        """mu, logvar [K, latent] of q(z | u_k), fp32."""
        mu, logvar = self.posterior(torch.clamp(self.pseudo_inputs, 0, 1))
        return mu.float(), logvar.float()

    def cached_prior_components(self):
        """``prior_components``, computed once while the weights stay as they are in evaluation
        (``zoo eval --nll`` asks for them thousands of times; each is 500 encoder passes)."""
        if self.training or torch.is_grad_enabled():
            return self.prior_components()
        key = tuple(p._version for p in self.parameters()) + tuple(p.data_ptr() for p in self.parameters())
        if getattr(self, "_cached_components", (None,))[0] != key:
            self._cached_components = (key, self.prior_components())
        return self._cached_components[1]

    def log_prior(self, z):
        """log p(z) = logsumexp_k log q(z | u_k) - log K, for z [..., latent].

        Each log q(z | u_k) expanded as -1/2 (D log 2 pi + sum logvar_k + z^2 / var_k - 2 z mu_k / var_k
        + mu_k^2 / var_k): two matrix products of z [N, D] with [D, K] instead of an [N, K, D] tensor,
        which made ``zoo eval --nll`` (1,000 draws an image against 500 components) spend most of its
        time here. In float64: the three terms nearly cancel where z lies close to a component."""
        mu, logvar = (t.double() for t in self.cached_prior_components())
        flat = z.reshape(-1, z.shape[-1]).double()
        inv_var = torch.exp(-logvar)  # [K, D]
        quadratic = flat.pow(2) @ inv_var.T - 2 * flat @ (mu * inv_var).T + (mu.pow(2) * inv_var).sum(-1)
        per_component = -0.5 * (z.shape[-1] * math.log(2 * math.pi) + logvar.sum(-1) + quadratic)  # [N, K]
        log_p = torch.logsumexp(per_component, dim=-1) - math.log(len(mu))
        return log_p.reshape(z.shape[:-1]).to(z.dtype)

    def log_prior_ratio(self, z, eps, logvar):
        log_q = -0.5 * (math.log(2 * math.pi) + logvar + eps.pow(2)).sum(-1)
        return self.log_prior(z) - log_q

    def kl_divergence(self, z, eps, mu, logvar):
        return -self.log_prior_ratio(z, eps, logvar)  # the one-draw estimate

    def noise_dim(self, prior):
        return self.latent_dim + 1

    def generate(self, eps, prior):
        mu, logvar = self.prior_components()
        k = len(mu)
        cumulative = torch.arange(1, k + 1, device=eps.device, dtype=eps.dtype) / k
        one_hot = pick(cumulative, uniform_from_normal(eps[:, -1]))
        z = one_hot @ mu + (one_hot @ torch.exp(0.5 * logvar)) * eps[:, :-1]
        return self.decode(z)
