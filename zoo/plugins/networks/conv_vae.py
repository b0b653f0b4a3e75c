"""The convolutional VAE: residual conv stages at 14x14 and 7x7 down to a Gaussian latent, the mirror
image back up to 28x28 Bernoulli logits. The objectives (ELBO, IWAE, KL warm-up) and the importance
weights of ``zoo eval --nll`` come from ``zoo.models.variational``; the prior is N(0, I), so the exported
generator folds nothing but the identity in.

Sized for a 2-core CPU: the costly 3x3 convolutions run at 14x14 and 7x7 only, and the 28x28 layers
are single strided (transposed) convolutions to and from one channel.
"""

from torch import nn
from torch.nn import functional as F

from zoo.models.variational import VariationalAutoEncoder


class ResidualBlock(nn.Module):
    """x + conv(elu(conv(elu(x)))), 3x3, same width; the branch starts small so that a fresh network
    is close to its skip connections and trains stably without normalization layers (a batch-norm
    statistic would make one image's likelihood depend on the others in its batch)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2.weight.data.mul_(0.1)

    def forward(self, x):
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class ConvVAE(VariationalAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        # Two stride-2 stages down and two up: the sides come back only when 4 divides them.
        if len(self.data_shape) != 3:
            raise ValueError("conv-vae needs images (channels x height x width), not vectors")
        channels, height, width = self.data_shape
        if height % 4 or width % 4:
            raise ValueError(f"conv-vae needs sides divisible by 4, not {height}x{width}")
        c, wide = config.channels, 2 * config.channels
        self.grid = (wide, height // 4, width // 4)
        flat = wide * (height // 4) * (width // 4)
        self.latent_shape = (config.latent,)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, c, 4, stride=2, padding=1),  # -> c x H/2 x W/2
            *[ResidualBlock(c) for _ in range(config.blocks)],
            nn.ELU(),
            nn.Conv2d(c, wide, 4, stride=2, padding=1),  # -> 2c x H/4 x W/4
            *[ResidualBlock(wide) for _ in range(config.blocks)],
            nn.ELU(),
            nn.Flatten(),
            nn.Linear(flat, config.hidden),
            nn.ELU(),
        )
        self.to_mu = nn.Linear(config.hidden, config.latent)
        self.to_logvar = nn.Linear(config.hidden, config.latent)
        self.from_latent = nn.Sequential(
            nn.Linear(config.latent, config.hidden), nn.ELU(), nn.Linear(config.hidden, flat), nn.ELU()
        )
        self.decoder = nn.Sequential(
            *[ResidualBlock(wide) for _ in range(config.blocks)],
            nn.ELU(),
            nn.ConvTranspose2d(wide, c, 4, stride=2, padding=1),  # -> c x H/2 x W/2
            *[ResidualBlock(c) for _ in range(config.blocks)],
            nn.ELU(),
            nn.ConvTranspose2d(c, self.output_shape[0], 4, stride=2, padding=1),  # -> logits, output_shape
        )

    def posterior(self, x):
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z):
        return self.decoder(self.from_latent(z).view(-1, *self.grid))
