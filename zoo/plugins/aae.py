"""AAE: the adversarial autoencoder (Makhzani et al., 2016), a discriminator on the codes with its
own optimizer; samples are decoded draws of the prior N(0, I).

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.aae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class AAEConfig:
    hidden: tuple = (512, 256)  # encoder widths; the decoder mirrors them
    latent: int = 8  # code size
    discriminator_hidden: int = 256  # width of the discriminator's two hidden layers
    adversarial_weight: float = 1.0  # weight of the encoder's adversarial term beside the reconstruction
    discriminator_lr_scale: float = 0.5  # the discriminator's learning rate, relative to the run's


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="aae",
            config=AAEConfig,
            build="zoo.plugins.networks.aae:AAE",
            default_dataset="mnist",
            summary="Adversarial autoencoder: a discriminator on the 8-d codes, with its own optimizer",
            train={"epochs": 10, "batch_size": 100, "lr": 1e-3},
        )
    )
