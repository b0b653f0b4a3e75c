"""The denoising autoencoder: the deep MLP autoencoder trained to undo Gaussian noise."""

from dataclasses import dataclass

import torch
from torch import nn

import zoo
from zoo.plugins.deep_ae import DeepAEConfig, DeepAutoEncoder


@dataclass
class DenoiserConfig(DeepAEConfig):
    sigma: float = 0.5  # std of the Gaussian noise added to the input during training


class DenoisingAutoEncoder(DeepAutoEncoder):
    def corrupt(self, x):
        return x + self.config.sigma * torch.randn_like(x)

    def loss(self, x):
        # Fix to the seed: the reconstruction of the noisy input is compared with the CLEAN input.
        # The seed compared it with the noisy images, which teaches the network to copy the noise.
        mse = nn.functional.mse_loss(self.reconstruct(self.corrupt(x)), x)
        return mse, {"mse": mse}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="denoiser",
            config=DenoiserConfig,
            build=DenoisingAutoEncoder,
            default_dataset="mnist",
            summary="Denoising MLP autoencoder: Gaussian noise in, clean image out",
            train={"epochs": 10, "batch_size": 128, "lr": 2e-3},
        )
    )
