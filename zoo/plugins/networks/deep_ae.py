"""The deep (MLP) autoencoder: data-hidden...-latent with ReLU and a mirrored decoder."""

from torch import nn

from zoo.models.base import AutoEncoder
from zoo.models.layers import mlp


class DeepAutoEncoder(AutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        widths = [self.data_dim, *config.hidden, config.latent]
        # Fixes to the seed: the code layer has no ReLU (a ReLU there zeroes dimensions of a small
        # code for good), and the output goes through a sigmoid to match pixels in [0, 1].
        self.encoder = mlp(widths)
        self.decoder = mlp(widths[::-1], last_activation=nn.Sigmoid)

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return self.decoder(z).view(-1, *self.data_shape)
