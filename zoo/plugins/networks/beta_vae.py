"""The beta-VAE: the VAE's network (``zoo.plugins.networks.vae``) with the KL term weighted by beta
(Higgins et al., 2017) or, when ``capacity_max`` is set, held near a capacity C that grows linearly
from 0 to ``capacity_max`` nats over ``capacity_epochs`` (Burgess et al., 2018):
recon + gamma * |KL - C|. The ELBO, the importance weights of ``zoo eval --nll`` and the sampler are
the VAE's."""

from zoo.plugins.networks.vae import VAE


class BetaVAE(VAE):
    def capacity(self) -> float:
        """C in nats at this point of training (the full capacity outside training)."""
        c_max, epochs = float(self.config.capacity_max), float(self.config.capacity_epochs)
        if not self.training or epochs <= 0:
            return c_max
        return c_max * min(1.0, self.epochs_done / epochs)

    def loss(self, x):
        recon, kl = self.neg_elbo_terms(x)
        recon, kl = recon.mean(), kl.mean()
        neg_elbo = recon + kl
        if self.config.capacity_max > 0:
            capacity = self.capacity()
            loss = recon + self.config.gamma * (kl - capacity).abs()
        else:
            capacity = 0.0
            loss = recon + self.config.beta * kl
        return loss, {
            "recon": recon,
            "kl": kl,
            "neg_elbo": neg_elbo,
            "capacity": capacity,
            "bits_per_dim": self.bits_per_dim(neg_elbo),
        }
