"""The deep (MLP) autoencoder: 784-256-64-16-4 with ReLU and a mirrored decoder.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.deep_ae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class DeepAEConfig:
    hidden: tuple = (256, 64, 16)  # encoder widths; the decoder mirrors them
    latent: int = 4  # code size
    # Standardize the encoder's input with the training split's statistics: "pixel" (each pixel its
    # own mean and spread, as PyOD standardizes each feature), "channel", or "none". Applied inside the
    # exported graphs: an app still feeds raw pixels.
    normalize: str = "none"


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="deep-ae",
            config=DeepAEConfig,
            build="zoo.plugins.networks.deep_ae:DeepAutoEncoder",
            default_dataset="mnist",
            summary="Deep MLP autoencoder 784-256-64-16-4 with a mirrored decoder",
            train={"epochs": 10, "batch_size": 128, "lr": 2e-3},
        )
    )
