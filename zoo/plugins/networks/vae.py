"""The variational autoencoder: MLP 784-400 with a 20-d Gaussian latent, a Bernoulli likelihood and
the analytic KL divergence to N(0, I). The objectives (ELBO, IWAE, KL warm-up) and the importance
weights of ``zoo eval --nll`` come from ``zoo.models.variational``."""

import math

from torch import nn

from zoo.models.variational import VariationalAutoEncoder


class VAE(VariationalAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        self.encoder = nn.Sequential(nn.Linear(self.data_dim, config.hidden), nn.ReLU())
        self.to_mu = nn.Linear(config.hidden, config.latent)
        self.to_logvar = nn.Linear(config.hidden, config.latent)
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, config.hidden), nn.ReLU(), nn.Linear(config.hidden, math.prod(self.output_shape))
        )

    def posterior(self, x):
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z):
        return self.decoder(z).view(-1, *self.output_shape)
