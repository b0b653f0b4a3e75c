"""WAE: the Wasserstein autoencoder with the MMD penalty and the inverse multiquadratics kernel
(Tolstikhin et al., 2018); samples are decoded draws of the prior N(0, I).

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.wae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class WAEConfig:
    hidden: tuple = (512, 256)  # encoder widths; the decoder mirrors them
    latent: int = 8  # code size, as the paper's MNIST model
    mmd_weight: float = 10.0  # lambda of the MMD penalty, the paper's for MNIST


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="wae",
            config=WAEConfig,
            build="zoo.plugins.networks.wae:WAE",
            default_dataset="mnist",
            summary="Wasserstein autoencoder (MMD, IMQ kernel) with an 8-d code and a N(0, I) prior",
            train={"epochs": 10, "batch_size": 100, "lr": 1e-3},
        )
    )
