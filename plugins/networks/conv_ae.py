"""The convolutional autoencoder: two conv + max-pool stages to an 8x7x7 code, two transposed
convolutions back to 1x28x28."""

from torch import nn

from zoo.model import AutoEncoder


class ConvAutoEncoder(AutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        channels, height, width = self.data_shape
        self.latent_shape = (config.latent, height // 4, width // 4)
        # Fixes to the lecture's network: ReLUs between the layers (without them the stack is one
        # linear map and the pooling) and a sigmoid output to match pixels in [0, 1].
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, config.hidden, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(config.hidden, config.latent, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(config.latent, config.hidden, 2, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(config.hidden, channels, 2, stride=2),
            nn.Sigmoid(),
        )

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)
