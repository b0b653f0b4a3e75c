"""The convolutional autoencoder: two conv + max-pool stages to an 8x7x7 code, two transposed
convolutions back to 1x28x28.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.conv_ae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class ConvAEConfig:
    hidden: int = 128  # channels of the first convolution
    latent: int = 8  # channels of the code; the code is latent x H/4 x W/4


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="conv-ae",
            config=ConvAEConfig,
            build="zoo.plugins.networks.conv_ae:ConvAutoEncoder",
            default_dataset="mnist",
            summary="Convolutional autoencoder with an 8x7x7 code",
            train={"epochs": 5, "batch_size": 128, "lr": 2e-3},
        )
    )
