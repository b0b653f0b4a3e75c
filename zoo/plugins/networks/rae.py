"""The regularised autoencoder (Ghosh et al., 2020), RAE-L2: a deterministic autoencoder whose
loss adds beta * |z|^2 / 2 to the reconstruction and whose decoder weights carry an L2 penalty (the
weight decay of their own optimizer group), sampled ex post from a Gaussian mixture fitted to the
training codes after every epoch; the mixture is folded into the exported generator."""

from zoo.models.base import OptimizerGroup
from zoo.models.coded import CodedAutoEncoder
from zoo.models.mixture import GaussianMixturePrior


class RAE(CodedAutoEncoder):
    def make_prior(self):
        return GaussianMixturePrior(self.latent_dim, self.config.components)

    def optimizer_groups(self):
        return {
            "encoder": OptimizerGroup(self.encoder.parameters()),
            "decoder": OptimizerGroup(self.decoder.parameters(), weight_decay=self.config.decoder_l2),
        }

    def loss(self, x):
        z = self.encode(x)
        recon = self.reconstruction(x, z)
        code_norm = 0.5 * z.float().pow(2).sum(1).mean()
        return recon + self.config.code_weight * code_norm, {"recon": recon, "code_norm": code_norm}

    def train_step(self, x, step):
        with step.autocast():
            loss, _ = step.forward(x)
        loss = loss.float()
        step.update(("encoder", "decoder"), loss)  # one backward pass; the decoder's Adam has the L2
        return loss
