"""RAE: the regularised autoencoder of Ghosh et al. (2020), RAE-L2, with its ex-post density: a
Gaussian mixture fitted to the training codes, which the exported generator samples.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.rae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class RAEConfig:
    hidden: tuple = (512, 256)  # encoder widths; the decoder mirrors them
    latent: int = 16  # code size
    code_weight: float = 1e-2  # beta of the code penalty beta * |z|^2 / 2
    decoder_l2: float = 1e-6  # the L2 penalty on the decoder's weights (its optimizer's weight decay)
    components: int = 10  # of the ex-post Gaussian mixture, as the paper's


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="rae",
            config=RAEConfig,
            build="zoo.plugins.networks.rae:RAE",
            default_dataset="mnist",
            summary="Regularised autoencoder (RAE-L2) sampled from a 10-component Gaussian mixture on its codes",
            train={"epochs": 10, "batch_size": 100, "lr": 1e-3},
        )
    )
