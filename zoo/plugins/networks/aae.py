"""The adversarial autoencoder (Makhzani et al., 2016): a deterministic autoencoder whose codes a
discriminator learns to tell from draws of the prior N(0, I), while the encoder learns to fool it.
Two optimizer groups and two steps per batch: the autoencoder's (reconstruction plus the
adversarial term) and the discriminator's, each with its own Adam."""

import torch
from torch.nn import functional as F

from zoo.models.base import GaussianPrior, OptimizerGroup
from zoo.models.coded import CodedAutoEncoder
from zoo.models.layers import mlp


class AAE(CodedAutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        width = config.discriminator_hidden
        self.discriminator = mlp((config.latent, width, width, 1))

    def make_prior(self):
        return GaussianPrior(self.latent_dim, fixed=True)

    def optimizer_groups(self):
        return {
            "autoencoder": OptimizerGroup([*self.encoder.parameters(), *self.decoder.parameters()]),
            "discriminator": OptimizerGroup(
                self.discriminator.parameters(), lr_scale=self.config.discriminator_lr_scale
            ),
        }

    def adversarial(self, z):
        """The encoder's term: the discriminator's cross-entropy for calling the codes prior draws."""
        logits = self.discriminator(z.float())
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def discriminator_loss(self, z):
        real = self.discriminator(torch.randn_like(z, dtype=torch.float32))
        fake = self.discriminator(z.detach().float())
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )

    def loss(self, x):
        z = self.encode(x)
        recon, adversarial = self.reconstruction(x, z), self.adversarial(z)
        return recon + self.config.adversarial_weight * adversarial, {"recon": recon, "adversarial": adversarial}

    def train_step(self, x, step):
        with step.autocast():
            z = self.encode(x)
            recon, adversarial = self.reconstruction(x, z), self.adversarial(z)
        loss = recon + self.config.adversarial_weight * adversarial
        step.update("autoencoder", loss)
        with step.autocast():
            critic = self.discriminator_loss(z)
        step.update("discriminator", critic)
        return loss.detach()
