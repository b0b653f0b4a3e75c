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
from pythae.models import VAE, WAE_MMD, BetaVAE, BetaVAEConfig, VAEConfig, WAE_MMD_Config
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.trainers import BaseTrainerConfig
from safetensors.torch import save_file

from zoo.core.registry import get_dataset
from zoo.data import as_float
from zoo.data.loading import load_splits


class Encoder(BaseEncoder):
    def __init__(self, network, variational: bool):
        super().__init__()
        self.network, self.variational = network, variational

    def forward(self, x):
        if self.variational:
            mu, logvar = self.network.posterior(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)
        return ModelOutput(embedding=self.network.encode(x))


class Decoder(BaseDecoder):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, z):
        return ModelOutput(reconstruction=self.network.decode(z))


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
    raise SystemExit(f"no pythae counterpart wired for {family}")


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
    config = BaseTrainerConfig(
        output_dir=tempfile.mkdtemp(prefix="pythae-"),
        num_epochs=int(epochs),
        per_device_train_batch_size=int(batch),
        learning_rate=float(lr),
        seed=int(seed),
        no_cuda=True,
    )
    start = time.perf_counter()
    TrainingPipeline(training_config=config, model=model)(train_data=train, eval_data=None)
    seconds = time.perf_counter() - start
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, out)
    print(json.dumps({"family": family, "train_seconds": seconds, "epochs": int(epochs), "samples": len(train)}))


if __name__ == "__main__":
    main()
