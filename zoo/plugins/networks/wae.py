"""The Wasserstein autoencoder with the MMD penalty (Tolstikhin et al., 2018): a deterministic
encoder whose codes are pulled towards the prior N(0, I) by the maximum mean discrepancy between a
batch of codes and as many prior draws, with the inverse multiquadratics kernel
k(a, b) = C / (C + |a - b|^2), C = 2 * latent * s for the scales s of the paper, summed."""

import torch

from zoo.models.base import GaussianPrior
from zoo.models.coded import CodedAutoEncoder

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the paper's kernel scales, times 2 * latent


def imq_mmd(z: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """The unbiased MMD^2 estimate between two batches [n, d] with the IMQ kernel at every scale."""
    n, d = z.shape
    both = torch.cat([z, prior])
    squared = torch.cdist(both, both).pow(2)
    kernel = sum(2 * d * s / (2 * d * s + squared) for s in SCALES)
    off_diagonal = 1 - torch.eye(n, device=z.device, dtype=z.dtype)
    within = ((kernel[:n, :n] + kernel[n:, n:]) * off_diagonal).sum() / (n * (n - 1))
    across = kernel[:n, n:].mean()
    return within - 2 * across


COSTS = ("squared", "bce")


class WAE(CodedAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        if config.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, not {config.cost!r}")

    def reconstruction(self, x, z) -> torch.Tensor:
        """c(x, decode(z)) per image, averaged over the batch, in fp32."""
        if self.config.cost == "bce":
            return super().reconstruction(x, z)
        return (self.decode(z).float() - x.float()).pow(2).flatten(1).sum(1).mean()

    def make_prior(self):
        return GaussianPrior(self.latent_dim, fixed=True)

    def loss(self, x):
        z = self.encode(x)
        recon = self.reconstruction(x, z)
        mmd = imq_mmd(z.float(), torch.randn_like(z, dtype=torch.float32)) if len(x) > 1 else z.new_zeros(())
        return recon + self.config.mmd_weight * mmd, {"recon": recon, "mmd": mmd}
