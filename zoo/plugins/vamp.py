"""vamp: the VAE with the VampPrior (Tomczak and Welling, 2018), a mixture of the posteriors of
learned pseudo-inputs; the generator samples that mixture.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.vamp``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class VampConfig:
    hidden: tuple = (300, 300)  # encoder widths (the paper's MLP); the decoder mirrors them
    latent: int = 40  # the paper's latent size
    pseudo_inputs: int = 500  # K, the paper's
    iw_samples: int = 1  # k of the importance-weighted bound trained on; 1: the ELBO
    kl_warmup_epochs: float = 0.0  # the KL weight ramps 0 -> 1 over this many epochs (the paper: 100)
    score: str = "mse"  # the anomaly score: "mse" or "neg_elbo", as the VAE's


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="vamp",
            config=VampConfig,
            build="zoo.plugins.networks.vamp:VampVAE",
            default_dataset="mnist-binary",
            summary="VAE with the VampPrior: 500 learned pseudo-inputs, a 40-d latent",
            train={"epochs": 20, "batch_size": 100, "lr": 5e-4},
        )
    )
