"""A VAE with two stochastic layers, as Burda et al. (2016) trained with the IWAE objective:
784-(200-200)-100-(100-100)-50, tanh hidden units. q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1), all
Gaussians but the Bernoulli (or discretized logistic) p(x|z1).

``sampled_terms`` gives log p(x|z1) and log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1) per
draw, so the ELBO, the k-sample IWAE bound (``iw_samples``) and ``zoo eval --nll``'s importance
weights are ``zoo.models.variational``'s. The code (``encode``) is z2's posterior mean with z1 at its
own mean; the generator takes 50 + 100 normals: z2, then z1 given z2."""

import torch
from torch import nn

from zoo.models.base import GaussianPrior
from zoo.models.variational import VariationalAutoEncoder, gaussian_log_prob


def gaussian_layer(sizes) -> nn.ModuleDict:
    """An MLP with tanh units to the mean and log-variance of a diagonal Gaussian."""
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(n_in, n_out), nn.Tanh()]
    return nn.ModuleDict(
        {
            "body": nn.Sequential(*layers),
            "mu": nn.Linear(sizes[-2], sizes[-1]),
            "logvar": nn.Linear(sizes[-2], sizes[-1]),
        }
    )


def gaussian(layer, x):
    h = layer["body"](x)
    return layer["mu"](h).float(), layer["logvar"](h).float().clamp(-12, 8)


class HierarchicalVAE(VariationalAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        h1, z1, h2, z2 = config.hidden1, config.latent1, config.hidden2, config.latent2
        self.latent_shape = (z2,)
        self.q_z1 = gaussian_layer((self.data_dim, h1, h1, z1))
        self.q_z2 = gaussian_layer((z1, h2, h2, z2))
        self.p_z1 = gaussian_layer((z2, h2, h2, z1))
        self.p_x = nn.Sequential(
            nn.Linear(z1, h1), nn.Tanh(), nn.Linear(h1, h1), nn.Tanh(), nn.Linear(h1, self.data_dim)
        )

    def make_prior(self):
        return GaussianPrior(self.latent_dim, fixed=True)

    def posterior(self, x):
        mu1, _ = gaussian(self.q_z1, x.flatten(1))
        return gaussian(self.q_z2, mu1)

    def decode_logits(self, z):
        mu1, _ = gaussian(self.p_z1, z)
        return self.p_x(mu1).view(-1, *self.data_shape)

    def sampled_terms(self, x, k: int):
        mu1, logvar1 = gaussian(self.q_z1, x.flatten(1))
        z1 = mu1.unsqueeze(1) + torch.randn(len(x), k, mu1.shape[1], device=x.device) * torch.exp(
            0.5 * logvar1
        ).unsqueeze(1)
        mu2, logvar2 = gaussian(self.q_z2, z1)
        z2 = mu2 + torch.randn_like(mu2) * torch.exp(0.5 * logvar2)
        prior_mu1, prior_logvar1 = gaussian(self.p_z1, z2)
        log_px = self.log_px(self.p_x(z1), x.flatten(1))
        zeros = torch.zeros_like(z2)
        log_ratio = (
            gaussian_log_prob(z1, prior_mu1, prior_logvar1)
            + gaussian_log_prob(z2, zeros, zeros)
            - gaussian_log_prob(z1, mu1.unsqueeze(1), logvar1.unsqueeze(1))
            - gaussian_log_prob(z2, mu2, logvar2)
        )
        return log_px, log_ratio

    def neg_elbo_terms(self, x):
        log_px, log_ratio = self.sampled_terms(x, 1)
        return -log_px[:, 0], -log_ratio[:, 0]

    def noise_dim(self, prior):
        return self.config.latent2 + self.config.latent1

    def generate(self, eps, prior):
        z2 = eps[:, : self.config.latent2]
        mu1, logvar1 = gaussian(self.p_z1, z2)
        z1 = mu1 + torch.exp(0.5 * logvar1) * eps[:, self.config.latent2 :]
        return torch.sigmoid(self.p_x(z1)).view(-1, *self.data_shape)
