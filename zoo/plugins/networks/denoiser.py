"""The denoising autoencoder: the deep MLP autoencoder trained to undo Gaussian noise."""

import torch
from torch import nn

from zoo.plugins.networks.deep_ae import DeepAutoEncoder


class DenoisingAutoEncoder(DeepAutoEncoder):
    def corrupt(self, x):
        return x + self.config.sigma * torch.randn_like(x)

    def loss(self, x):
        # Fix to the seed: the reconstruction of the noisy input is compared with the CLEAN input.
        # The seed compared it with the noisy images, which teaches the network to copy the noise.
        mse = nn.functional.mse_loss(self.reconstruct(self.corrupt(x)), x)
        return mse, {"mse": mse}
