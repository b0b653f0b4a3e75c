"""The variational autoencoder: MLP 784-400 with a 20-d Gaussian latent, a Bernoulli likelihood and
the analytic KL divergence to N(0, I). The objectives (ELBO, IWAE, KL warm-up) and the importance
weights of ``zoo eval --nll`` come from ``zoo.variational``."""

from dataclasses import dataclass

from torch import nn

import zoo
from zoo.variational import VariationalAutoEncoder


@dataclass
class VAEConfig:
    hidden: int = 400  # width of the single hidden layer, encoder and decoder
    latent: int = 20  # dimensions of the Gaussian latent
    # The defaults keep pytorch/examples' objective: the plain ELBO, no warm-up.
    iw_samples: int = 1  # k of the importance-weighted bound (IWAE) trained on; 1: the ELBO
    kl_warmup_epochs: float = 0.0  # the KL weight ramps 0 -> 1 over this many epochs; 0: off


class VAE(VariationalAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        self.encoder = nn.Sequential(nn.Linear(self.data_dim, config.hidden), nn.ReLU())
        self.to_mu = nn.Linear(config.hidden, config.latent)
        self.to_logvar = nn.Linear(config.hidden, config.latent)
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, config.hidden), nn.ReLU(), nn.Linear(config.hidden, self.data_dim)
        )

    def posterior(self, x):
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z):
        return self.decoder(z).view(-1, *self.data_shape)


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="vae",
            config=VAEConfig,
            build=VAE,
            default_dataset="mnist",
            summary="Variational autoencoder 784-400-20 with a Bernoulli likelihood",
            # Batch 32 and a cosine decay from 1.5e-3 reach a test -ELBO near 103 nats in 10 epochs
            # (pytorch/examples, batch 128 at a constant 1e-3: 105.6).
            train={"epochs": 10, "batch_size": 32, "lr": 1.5e-3},
        )
    )
