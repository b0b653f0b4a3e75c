"""The linear autoencoder: a linear encoder and decoder with no activation, which learns the same
subspace as PCA (checked by ``zoo eval``'s ``pca_angle_deg``)."""

from dataclasses import dataclass

import torch
from torch import nn

import zoo
from zoo.model import AutoEncoder


@dataclass
class PCAConfig:
    latent: int = 2  # code size: 2 for points3d's plane; --set latent=100 gives the 784-100-784 AE


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


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="pca-ae",
            config=PCAConfig,
            build=PCAAutoEncoder,
            default_dataset="points3d",
            summary="Linear autoencoder (no activations): learns the PCA subspace",
            # 100 points: small batches and many epochs so Adam settles on the exact plane.
            train={"epochs": 200, "batch_size": 10, "lr": 1e-2},
        )
    )
