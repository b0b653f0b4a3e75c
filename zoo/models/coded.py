"""What the autoencoders with a deterministic code and a regularised latent space share (WAE, RAE,
AAE): an MLP encoder to the code, an MLP decoder to Bernoulli logits, and the reconstruction term
their objectives add a regulariser to. Each architecture supplies only its regulariser (and, where
it needs one, its sampler)."""

import torch
from torch.nn import functional as F

from zoo.models.base import AutoEncoder
from zoo.models.layers import mlp


class CodedAutoEncoder(AutoEncoder):
    """x -> MLP (``config.hidden``, a tuple of widths) -> z [latent] -> the mirror MLP -> logits.

    The reconstruction term is the Bernoulli negative log-likelihood per image (binary cross-entropy
    summed over pixels), as in the papers' MNIST experiments; it is also right for [0, 1] pixels of
    photographs as targets."""

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        hidden = tuple(config.hidden)
        self.latent_shape = (config.latent,)
        self.encoder = mlp((self.data_dim, *hidden, config.latent))
        self.decoder = mlp((config.latent, *hidden[::-1], self.data_dim))

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode_logits(self, z):
        return self.decoder(z).view(-1, *self.data_shape)

    def decode(self, z):
        return torch.sigmoid(self.decode_logits(z))

    def reconstruction(self, x, z) -> torch.Tensor:
        """Mean over the batch of the per-image binary cross-entropy, in nats, fp32."""
        logits = self.decode_logits(z).flatten(1).float()
        return F.binary_cross_entropy_with_logits(logits, x.flatten(1).float(), reduction="sum") / len(x)
