"""A Gaussian mixture as a latent prior, fitted ex post to a model's training codes (Ghosh et al.'s
sampler for regularised autoencoders) and folded into the exported generator.

Sampling stays a deterministic function of N(0, I) noise: the generator takes latent + 1 normals,
the last turned into a uniform that picks the component by its cumulative weight, the rest scaled
by that component's Cholesky factor."""

import torch
from torch import nn

from zoo.models.base import GaussianPrior
from zoo.models.variational import pick, uniform_from_normal

EM_ITERATIONS = 100
JITTER = 1e-4  # added to each covariance's diagonal (times the codes' variance): keeps it invertible


class GaussianMixturePrior(nn.Module):
    def __init__(self, dim: int, components: int):
        super().__init__()
        self.dim, self.components = dim, components
        self.noise_dim = dim + 1  # one more normal draw than dimensions: it picks the component
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, dim))
        self.register_buffer("scale_trils", torch.eye(dim).repeat(components, 1, 1))

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> None:
        """EM from a deterministic start (components at evenly spaced codes of the sorted first
        principal direction), in float64, with a floor on each covariance."""
        z = z.flatten(1).double()
        n, k = len(z), self.components
        centred = z - z.mean(0)
        direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        order = torch.argsort(centred @ direction)
        means = z[order[torch.linspace(0, n - 1, k).round().long()]]
        floor = JITTER * centred.var(0).mean().clamp_min(1e-12) * torch.eye(self.dim, dtype=z.dtype, device=z.device)
        covs = torch.cov(centred.T).reshape(self.dim, self.dim).expand(k, -1, -1) + floor
        weights = torch.full((k,), 1.0 / k, dtype=z.dtype, device=z.device)
        for _ in range(EM_ITERATIONS):
            log_r = torch.distributions.MultivariateNormal(means, covs).log_prob(z.unsqueeze(1)) + weights.log()
            r = torch.softmax(log_r, dim=1)  # [n, k] responsibilities
            mass = r.sum(0) + 1e-10
            weights = mass / n
            means = (r.T @ z) / mass.unsqueeze(1)
            diff = z.unsqueeze(1) - means  # [n, k, d]
            covs = torch.einsum("nk,nki,nkj->kij", r, diff, diff) / mass.view(k, 1, 1) + floor
        self.weights.copy_(weights.float())
        self.means.copy_(means.float())
        self.scale_trils.copy_(torch.linalg.cholesky(covs).float())

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        """eps [B, dim + 1] ~ N(0, I) -> z [B, dim] from the mixture."""
        one_hot = pick(torch.cumsum(self.weights, 0), uniform_from_normal(eps[:, -1]))  # [B, K]
        mean = one_hot @ self.means
        scale = torch.einsum("bk,kij->bij", one_hot, self.scale_trils)
        return mean + torch.einsum("bij,bj->bi", scale, eps[:, :-1])

    def moments(self):
        """The mixture's mean and covariance (what a single Gaussian sampler can reproduce)."""
        mean = self.weights @ self.means
        covs = self.scale_trils @ self.scale_trils.transpose(1, 2)
        diff = self.means - mean
        cov = torch.einsum("k,kij->ij", self.weights, covs + diff.unsqueeze(2) * diff.unsqueeze(1))
        return mean, cov

    def describe(self) -> dict:
        mean, cov = self.moments()
        moment_matched = GaussianPrior(self.dim)
        moment_matched.mean.copy_(mean)
        moment_matched.scale_tril.copy_(torch.linalg.cholesky(cov.double() + 1e-9 * torch.eye(self.dim)).float())
        return {
            **moment_matched.describe(),
            "kind": "gaussian_mixture",
            "components": self.components,
            "weights": self.weights.tolist(),
        }
