"""hvae: a VAE with two stochastic layers, Burda et al.'s (2016) 784-(200-200)-100-(100-100)-50,
trained with the ELBO or the IWAE bound (``iw_samples``); ``zoo eval --nll`` estimates its NLL.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.hvae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class HVAEConfig:
    hidden1: int = 200  # width of the two hidden layers between x and z1
    latent1: int = 100  # z1
    hidden2: int = 100  # width of the two hidden layers between z1 and z2
    latent2: int = 50  # z2, the top layer: the code
    iw_samples: int = 1  # k of the IWAE bound trained on (Burda et al.: 50); 1: the ELBO
    kl_warmup_epochs: float = 0.0  # the weight of log p(z) - log q(z|x) ramps 0 -> 1 over this many epochs
    score: str = "mse"  # the anomaly score: "mse" or "neg_elbo", as the VAE's


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="hvae",
            config=HVAEConfig,
            build="zoo.plugins.networks.hvae:HierarchicalVAE",
            default_dataset="mnist-binary",
            summary="Two-stochastic-layer VAE 784-(200-200)-100-(100-100)-50 with the IWAE objective",
            train={"epochs": 20, "batch_size": 100, "lr": 1e-3},
        )
    )
