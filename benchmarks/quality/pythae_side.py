"""The pythae side of benchmarks.quality.pythae_side_by_side, run by pythae's own interpreter (its
virtual environment under .peers/): one family trained with pythae's model and trainer around the
zoo's own encoder and decoder networks (pythae takes custom networks), on the same data, batch,
learning rate, seed and epochs. Writes the trained networks' weights (safetensors) and prints one
JSON line: the wall seconds of pythae's training call and the epochs.

    python -m benchmarks.quality.pythae_side FAMILY SUBSET EPOCHS BATCH LR SEED OUT [SETS_JSON [DATA_NPZ]]

SETS_JSON: the zoo network's settings ({"hidden": "512"}); DATA_NPZ: train on its x_train (uint8)
instead of MNIST's first SUBSET images.
"""

import importlib
import json
import sys
import tempfile
import time

import numpy as np
import torch
from pythae.models import (
    RAE_L2,
    VAE,
    VAMP,
    WAE_MMD,
    Adversarial_AE,
    Adversarial_AE_Config,
    BetaVAE,
    BetaVAEConfig,
    RAE_L2_Config,
    VAEConfig,
    VAMPConfig,
    WAE_MMD_Config,
)
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.trainers import AdversarialTrainerConfig, BaseTrainerConfig, CoupledOptimizerTrainerConfig
from safetensors.torch import save_file

from zoo.core.registry import get_dataset
from zoo.data import as_float
from zoo.data.loading import load_splits


def own_parts(wrapper, network, names) -> None:
    """Register only the network's children named ``names`` (or starting "to_" for an encoder) with
    the pythae wrapper, and keep the whole network unregistered for the calls: pythae's trainers
    build one optimizer from each wrapper's parameters (RAE_L2's decoder Adam carries the weight
    decay; the AAE's discriminator Adam must not move the encoder), so each must own only its part."""
    object.__setattr__(wrapper, "network", network)
    wrapper.parts = torch.nn.ModuleDict(
        {
            name: child
            for name, child in network.named_children()
            if name in names or "to_" in names and name.startswith("to_")
        }
    )


class Encoder(BaseEncoder):
    def __init__(self, network, variational: bool):
        super().__init__()
        own_parts(self, network, ("encoder", "to_"))
        self.variational = variational

    def forward(self, x):
        if self.variational:
            mu, logvar = self.network.posterior(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)
        z = self.network.encode(x)
        return ModelOutput(embedding=z, log_covariance=torch.zeros_like(z))  # a deterministic posterior


class Decoder(BaseDecoder):
    def __init__(self, network):
        super().__init__()
        own_parts(self, network, ("from_latent", "decoder"))

    def forward(self, z):
        return ModelOutput(reconstruction=self.network.decode(z))


class Discriminator(BaseDiscriminator):
    """The zoo network's discriminator, as pythae's adversarial loss wants it: probabilities."""

    def __init__(self, network):
        super().__init__()
        own_parts(self, network, ("discriminator",))

    def forward(self, z):
        return ModelOutput(embedding=torch.sigmoid(self.network.discriminator(z)))


def pythae_model(family: str, network):
    """pythae's model of the family with the zoo network's settings (latent, beta, MMD weight)."""
    config = network.config
    shape = tuple(network.data_shape)
    if family == "vae":
        settings = VAEConfig(input_dim=shape, latent_dim=config.latent, reconstruction_loss="bce")
        return VAE(settings, encoder=Encoder(network, True), decoder=Decoder(network))
    if family == "conv-vae":  # a user's colour images: pythae's default reconstruction loss, the squared error
        settings = VAEConfig(input_dim=shape, latent_dim=config.latent, reconstruction_loss="mse")
        return VAE(settings, encoder=Encoder(network, True), decoder=Decoder(network))
    if family == "beta-vae":
        settings = BetaVAEConfig(input_dim=shape, latent_dim=config.latent, beta=config.beta, reconstruction_loss="bce")
        return BetaVAE(settings, encoder=Encoder(network, True), decoder=Decoder(network))
    if family == "wae":
        settings = WAE_MMD_Config(
            input_dim=shape, latent_dim=config.latent, kernel_choice="imq", reg_weight=config.mmd_weight
        )
        return WAE_MMD(settings, encoder=Encoder(network, False), decoder=Decoder(network))
    if family == "vamp":
        settings = VAMPConfig(
            input_dim=shape, latent_dim=config.latent, number_components=config.pseudo_inputs, reconstruction_loss="bce"
        )
        return VAMP(settings, encoder=Encoder(network, True), decoder=Decoder(network))
    if family == "rae":  # pythae's RAE_L2 reconstructs with the squared error
        settings = RAE_L2_Config(
            input_dim=shape, latent_dim=config.latent, embedding_weight=config.code_weight, reg_weight=config.decoder_l2
        )
        return RAE_L2(settings, encoder=Encoder(network, False), decoder=Decoder(network))
    if family == "aae":
        settings = Adversarial_AE_Config(
            input_dim=shape,
            latent_dim=config.latent,
            reconstruction_loss="bce",
            adversarial_loss_scale=config.adversarial_weight,
            deterministic_posterior=True,
        )
        return Adversarial_AE(
            settings, encoder=Encoder(network, False), decoder=Decoder(network), discriminator=Discriminator(network)
        )
    raise SystemExit(f"no pythae counterpart wired for {family}")


def trainer_config(family: str, network, common: dict, lr: float):
    """pythae's trainer settings for the family: its pipeline insists on a coupled-optimizer trainer
    for RAE_L2 (the decoder's weight decay is the L2 penalty) and an adversarial one for the AAE."""
    if family == "rae":
        return CoupledOptimizerTrainerConfig(
            **common,
            encoder_learning_rate=lr,
            decoder_learning_rate=lr,
            decoder_optimizer_params={"weight_decay": network.config.decoder_l2},
        )
    if family == "aae":
        return AdversarialTrainerConfig(
            **common,
            autoencoder_learning_rate=lr,
            discriminator_learning_rate=lr * network.config.discriminator_lr_scale,
        )
    return BaseTrainerConfig(**common, learning_rate=lr)


def pseudo_inputs_back(model, network) -> None:
    """pythae's VAMP keeps its pseudo-inputs as hardtanh(W e_k + b); the zoo's as the images."""
    linear = model.pseudo_inputs[0]
    with torch.no_grad():
        network.pseudo_inputs.copy_(
            torch.clamp(linear.weight.T + linear.bias, 0, 1).reshape(network.pseudo_inputs.shape)
        )


def build(family: str, sets: dict, shape: tuple):
    """The family's network from its plugin module in this checkout: this interpreter's installed
    entry points may be another checkout's, without the family."""
    module = importlib.import_module("zoo.plugins." + family.replace("-", "_"))
    specs = []
    module.register_models(specs.append)
    from zoo.core.config import make_config

    config = make_config(specs[0].config, sets)
    return specs[0].build(config, shape)


def main():
    family, subset, epochs, batch, lr, seed, out = sys.argv[1:8]
    sets = json.loads(sys.argv[8]) if len(sys.argv) > 8 else {}
    data = sys.argv[9] if len(sys.argv) > 9 else ""
    torch.set_num_threads(torch.get_num_threads())
    torch.manual_seed(int(seed))
    if data:
        train = torch.as_tensor(np.load(data)["x_train"]).float() / 255
    else:
        train = as_float(load_splits(get_dataset("mnist"), None, int(subset), torch.device("cpu")).train)
    network = build(family, sets, tuple(train.shape[1:]) if data else tuple(get_dataset("mnist").data_shape))
    model = pythae_model(family, network)
    common = {
        "output_dir": tempfile.mkdtemp(prefix="pythae-"),
        "num_epochs": int(epochs),
        "per_device_train_batch_size": int(batch),
        "seed": int(seed),
        "no_cuda": True,
    }
    config = trainer_config(family, network, common, float(lr))
    start = time.perf_counter()
    TrainingPipeline(training_config=config, model=model)(train_data=train, eval_data=None)
    seconds = time.perf_counter() - start
    if family == "vamp":
        pseudo_inputs_back(model, network)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, out)
    print(json.dumps({"family": family, "train_seconds": seconds, "epochs": int(epochs), "samples": len(train)}))


if __name__ == "__main__":
    main()
