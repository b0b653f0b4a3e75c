"""beta-VAE: the VAE with a weighted KL term (Higgins et al., 2017), or with Burgess et al.'s (2018)
capacity schedule, recon + gamma * |KL - C| with C growing linearly to ``capacity_max`` nats.

The plugin: settings and registration, no torch. The network is in
``zoo.plugins.networks.beta_vae``, imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class BetaVAEConfig:
    hidden: int = 400  # width of the single hidden layer, encoder and decoder
    latent: int = 10  # dimensions of the Gaussian latent
    beta: float = 4.0  # the KL weight (Higgins et al.); used when capacity_max is 0
    # Burgess et al.'s capacity schedule: with capacity_max > 0 the loss is recon + gamma * |KL - C|,
    # C growing linearly from 0 to capacity_max nats over capacity_epochs (beta is then unused).
    capacity_max: float = 0.0
    capacity_epochs: float = 10.0
    gamma: float = 100.0
    likelihood: str = "bernoulli"  # or "logistic" for 8-bit pixels (with --set binarize=none)
    score: str = "mse"  # the anomaly score: "mse" or "neg_elbo", as the VAE's


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="beta-vae",
            config=BetaVAEConfig,
            build="zoo.plugins.networks.beta_vae:BetaVAE",
            default_dataset="mnist",
            summary="beta-VAE 784-400-10: a weighted KL, or Burgess et al.'s capacity schedule",
            train={"epochs": 10, "batch_size": 64, "lr": 1e-3},
        )
    )
