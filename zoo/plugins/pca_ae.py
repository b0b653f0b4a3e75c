"""The linear autoencoder: a linear encoder and decoder with no activation, which learns the same
subspace as PCA (checked by ``zoo eval``'s ``pca_angle_deg``).

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.pca_ae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class PCAConfig:
    latent: int = 2  # code size: 2 for points3d's plane; --set latent=100 gives the 784-100-784 AE


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="pca-ae",
            config=PCAConfig,
            build="zoo.plugins.networks.pca_ae:PCAAutoEncoder",
            default_dataset="points3d",
            summary="Linear autoencoder (no activations): learns the PCA subspace",
            # 100 points: small batches and many epochs so Adam settles on the exact plane.
            train={"epochs": 200, "batch_size": 10, "lr": 1e-2},
        )
    )
