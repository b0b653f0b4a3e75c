"""vq-vae: vector quantization with an EMA codebook (van den Oord et al., 2017) and a small PixelCNN
prior over the code grid, trained as the second stage of the same run, so that generator.onnx
samples images.

The plugin: settings and registration, no torch. The network is in ``zoo.plugins.networks.vq_vae``,
imported when a model is built."""

from dataclasses import dataclass

import zoo


@dataclass
class VQVAEConfig:
    channels: int = 64  # width of the encoder and decoder at H/4 x W/4 (half of it at H/2 x W/2)
    embedding_dim: int = 8  # D, each codebook vector's size
    codebook_size: int = 64  # K, the codebook's entries
    commitment: float = 0.25  # beta of the commitment loss
    ema_decay: float = 0.99  # of the codebook's moving averages
    prior_channels: int = 64  # width of the PixelCNN prior
    prior_layers: int = 4  # masked residual layers of the PixelCNN after its first
    prior_epochs: int = 0  # epochs of the second stage (the PixelCNN); 0: as many as --epochs


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="vq-vae",
            config=VQVAEConfig,
            build="zoo.plugins.networks.vq_vae:VQVAE",
            default_dataset="mnist",
            summary="VQ-VAE with an EMA codebook and a PixelCNN prior over its 7x7 code grid (a second stage)",
            train={"epochs": 10, "batch_size": 128, "lr": 1e-3},
        )
    )
