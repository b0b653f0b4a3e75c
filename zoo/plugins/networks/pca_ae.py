"""The linear autoencoder: a linear encoder and decoder with no activation, which learns the same
subspace as PCA (checked by ``zoo eval``'s ``pca_angle_deg``)."""

import torch
from torch import nn

from zoo.models.base import AutoEncoder
from zoo.plugins.pca_ae import PCAConfig


class PCAAutoEncoder(AutoEncoder):
    # The loss is the base class's mean squared reconstruction error.
    def __init__(self, config: PCAConfig, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        self.encoder = nn.Linear(self.data_dim, config.latent)
        self.decoder = nn.Linear(config.latent, self.data_dim)

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return self.decoder(z).view(-1, *self.data_shape)

    @torch.no_grad()
    def extra_metrics(self, train):
        """Largest principal angle (degrees) between the decoder's column space and the top-k
        principal subspace of the centred training data: 0 means the AE learned exactly PCA."""
        x = train.flatten(1).double()
        x = x - x.mean(0)
        k = self.config.latent
        pcs = torch.linalg.svd(x, full_matrices=False).Vh[:k].T  # [D, k], orthonormal
        dec = torch.linalg.qr(self.decoder.weight.double().cpu()).Q  # [D, k], orthonormal
        cosines = torch.linalg.svdvals(pcs.T.cpu() @ dec).clamp(max=1.0)
        return {"pca_angle_deg": float(torch.rad2deg(torch.arccos(cosines.min())))}
