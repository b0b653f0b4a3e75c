"""The convolutional autoencoder: two conv + max-pool stages to an 8 x H/4 x W/4 code (8x7x7 on
MNIST), two transposed convolutions back to the image. Takes any image whose sides 4 divides."""

from torch import nn

from zoo.models.base import AutoEncoder


class ConvAutoEncoder(AutoEncoder):
    # Its code is an 8 x H/4 x W/4 map (392 numbers on MNIST, half the pixels): it reconstructs
    # nearly anything, so its reconstruction error does not tell anomalies apart (mean one-class
    # AUROC 49.7 in benchmarks/quality/one_class.py).
    score_caveat = (
        "conv-ae is not an anomaly scorer: its 8-channel code map reconstructs nearly any image "
        "(mean one-class AUROC 49.7, chance is 50); use deep-ae or conv-vae to score"
    )

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        # Two 2x2 poolings down and two stride-2 transposed convolutions up: the sides come back
        # only when 4 divides them.
        if len(self.data_shape) != 3:
            raise ValueError("conv-ae needs images (channels x height x width), not vectors")
        channels, height, width = self.data_shape
        if height % 4 or width % 4:
            raise ValueError(f"conv-ae needs sides divisible by 4, not {height}x{width}")
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
