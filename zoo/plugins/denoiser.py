"""The denoising autoencoder: the deep MLP autoencoder trained to undo Gaussian noise.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.denoiser``,
imported when a model is built."""

from dataclasses import dataclass

import zoo
from zoo.plugins.deep_ae import DeepAEConfig


@dataclass
class DenoiserConfig(DeepAEConfig):
    sigma: float = 0.5  # std of the Gaussian noise added to the input during training


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="denoiser",
            config=DenoiserConfig,
            build="zoo.plugins.networks.denoiser:DenoisingAutoEncoder",
            default_dataset="mnist",
            summary="Denoising MLP autoencoder: Gaussian noise in, clean image out",
            train={"epochs": 10, "batch_size": 128, "lr": 2e-3},
        )
    )
