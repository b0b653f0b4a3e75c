"""The pythae side of benchmarks.quality.pythae_side_by_side, run by pythae's own interpreter (its
virtual environment under .peers/): one family trained with pythae's model and trainer around the
zoo's own encoder and decoder networks (pythae takes custom networks), on the same data, batch,
learning rate, seed and epochs. Writes the trained networks' weights (safetensors) and prints one
JSON line: the wall seconds of pythae's training call and the epochs.

    python -m benchmarks.quality.pythae_side FAMILY SUBSET EPOCHS BATCH LR SEED OUT \
        [--sets JSON] [--data NPZ] [--samples N] [--own-networks]

--sets: the zoo network's settings ({"hidden": "512"}); --data: train on its x_train (uint8) instead
of MNIST's first SUBSET images. For vq-vae, whose sampler is a second model (pythae's
PixelCNNSampler, fitted on the codes for as many epochs), --samples N images drawn from it are
written beside OUT (``OUT.outputs.safetensors``): the zoo network cannot draw from pythae's
PixelCNN. --own-networks trains pythae's own MNIST networks for the family instead of the zoo's
(vq-vae: its ResNets, a 4 x 4 grid of 16-d codes), and writes their reconstructions of the first N
test images there too, since no zoo network can hold them.
"""

import argparse
import importlib
import json
import tempfile
import time

import numpy as np
import torch
from pythae.models import (
    RAE_L2,
    VAE,
    VAMP,
    VQVAE,
    WAE_MMD,
    Adversarial_AE,
    Adversarial_AE_Config,
    BetaVAE,
    BetaVAEConfig,
    RAE_L2_Config,
    VAEConfig,
    VAMPConfig,
    VQVAEConfig,
    WAE_MMD_Config,
)
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder
from pythae.models.nn.benchmarks.mnist.resnets import Decoder_ResNet_VQVAE_MNIST, Encoder_ResNet_VQVAE_MNIST
from pythae.pipelines import TrainingPipeline
from pythae.samplers import PixelCNNSampler
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


class GridEncoder(BaseEncoder):
    """A convolutional encoder's grid before quantization [B, D, h, w], as pythae's VQVAE wants it."""

    def __init__(self, network):
        super().__init__()
        own_parts(self, network, ("encoder",))

    def forward(self, x):
        return ModelOutput(embedding=self.network.encoder(x))


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
    if family == "vq-vae":  # pythae's VQVAE reconstructs with the squared error
        settings = vq_settings(network, config.embedding_dim)
        return VQVAE(settings, encoder=GridEncoder(network), decoder=Decoder(network))
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


def vq_settings(network, code_size: int):
    """pythae's VQVAE settings with the zoo network's codebook: its size, commitment and EMA decay
    (the codebook moved by moving averages, as the zoo's), for codes of ``code_size``."""
    config = network.config
    return VQVAEConfig(
        input_dim=tuple(network.data_shape),
        latent_dim=code_size,
        commitment_loss_factor=config.commitment,
        num_embeddings=config.codebook_size,
        use_ema=True,
        decay=config.ema_decay,
    )


def own_vq_model(network):
    """pythae's VQVAE around its own MNIST ResNets (a 4 x 4 grid of 16-d codes)."""
    settings = vq_settings(network, 16)
    return VQVAE(settings, encoder=Encoder_ResNet_VQVAE_MNIST(settings), decoder=Decoder_ResNet_VQVAE_MNIST(settings))


def pixelcnn_samples(model, train, common: dict, lr: float, count: int):
    """pythae's own second stage for its VQVAE: a PixelCNNSampler (its default network) fitted on
    the training codes with the trainer settings of the first stage, then ``count`` images drawn."""
    sampler = PixelCNNSampler(model)
    sampler.fit(train, training_config=BaseTrainerConfig(**common, learning_rate=lr))
    # pythae 0.1.2's sampler looks the drawn codes up by calling quantizer.embeddings, a plain tensor
    # under the EMA quantizer (only the other quantizer's is an nn.Embedding): wrap it to draw.
    codebook = model.quantizer.embeddings
    del model.quantizer.embeddings
    model.quantizer.embeddings = torch.nn.Embedding.from_pretrained(codebook)
    torch.manual_seed(0)
    with torch.no_grad():
        return sampler.sample(num_samples=count, batch_size=500)


def build(family: str, sets: dict, shape: tuple):
    """The family's network from its plugin module in this checkout: this interpreter's installed
    entry points may be another checkout's, without the family."""
    module = importlib.import_module("zoo.plugins." + family.replace("-", "_"))
    specs = []
    module.register_models(specs.append)
    from zoo.core.config import make_config

    config = make_config(specs[0].config, sets)
    return specs[0].build(config, shape)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, kind in (("family", str), ("subset", int), ("epochs", int), ("batch", int), ("lr", float)):
        parser.add_argument(name, type=kind)
    parser.add_argument("seed", type=int)
    parser.add_argument("out")
    parser.add_argument("--sets", type=json.loads, default={})
    parser.add_argument("--data", default="")
    parser.add_argument("--samples", type=int, default=0)
    parser.add_argument("--own-networks", action="store_true")
    return parser.parse_args()


def main():
    args = parse_arguments()
    family, out = args.family, args.out
    torch.set_num_threads(torch.get_num_threads())
    torch.manual_seed(args.seed)
    mnist = lambda: load_splits(get_dataset("mnist"), None, args.subset, torch.device("cpu"))  # noqa: E731
    if args.data:  # another dataset (the colour folder): MNIST is not read
        train = torch.as_tensor(np.load(args.data)["x_train"]).float() / 255
    else:
        train = as_float(mnist().train)
    network = build(family, args.sets, tuple(train.shape[1:]) if args.data else tuple(get_dataset("mnist").data_shape))
    if args.own_networks and family != "vq-vae":
        raise SystemExit(f"pythae's own networks are wired for vq-vae only, not {family}")
    model = own_vq_model(network) if args.own_networks else pythae_model(family, network)
    common = {
        "output_dir": tempfile.mkdtemp(prefix="pythae-"),
        "num_epochs": args.epochs,
        "per_device_train_batch_size": args.batch,
        "seed": args.seed,
        "no_cuda": True,
    }
    config = trainer_config(family, network, common, args.lr)
    start = time.perf_counter()
    TrainingPipeline(training_config=config, model=model)(train_data=train, eval_data=None)
    seconds = time.perf_counter() - start
    if family == "vamp":
        pseudo_inputs_back(model, network)
    outputs, measured = {}, {}
    if args.own_networks:  # measured before the sampler, which swaps the quantizer's codebook for its draw
        model.eval()
        with torch.no_grad():
            answer = model({"data": as_float(mnist().test)[: args.samples]})
        outputs["recon"] = answer.recon_x
        measured["codes_used"] = int(answer.quantized_indices.unique().numel())
    if family == "vq-vae":
        if not args.own_networks:  # the trained codebook, for the zoo network's reconstructions
            with torch.no_grad():
                network.codebook.copy_(model.quantizer.embeddings)
        outputs["samples"] = pixelcnn_samples(model, train, common, args.lr, args.samples)
        seconds = time.perf_counter() - start  # both stages, as the zoo's run times both
    report = {"family": family, "train_seconds": seconds, "epochs": args.epochs, "samples": len(train), **measured}
    if outputs:
        save_file({k: v.contiguous() for k, v in outputs.items()}, out + ".outputs.safetensors")
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, out)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
