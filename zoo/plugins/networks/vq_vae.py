"""VQ-VAE (van den Oord et al., 2017) with the codebook updated by exponential moving averages, and
a small PixelCNN over the code grid as its prior, trained as the run's second stage.

Encoder: two stride-2 convolutions and a residual block to a D x H/4 x W/4 grid, each vector
replaced by its nearest of K codebook entries (straight-through gradients, commitment loss
beta * |z_e - sg(e)|^2). Decoder: the mirror image to Bernoulli logits. The code (``encode``) is the
quantized grid. Stage "main" trains the autoencoder (the codebook moves by EMA, dead entries
restart at encoder outputs); stage "prior" trains the PixelCNN on the codes of the training data.

The exported generator takes one normal per grid position, turns each into a uniform and samples
the grid in raster order, one PixelCNN pass per position, unrolled in the graph."""

import torch
from torch import nn
from torch.nn import functional as F

from zoo.models.base import AutoEncoder, OptimizerGroup
from zoo.models.variational import pick, uniform_from_normal


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x):
        return x + self.body(x)


class MaskedConv(nn.Conv2d):
    """A convolution that sees only the positions before the centre in raster order (and the centre
    itself for mask "B"): PixelCNN's causal convolution over the code grid."""

    def __init__(self, mask: str, n_in, n_out, size):
        super().__init__(n_in, n_out, size, padding=size // 2)
        weight_mask = torch.ones(size, size)
        weight_mask[size // 2, size // 2 + (mask == "B") :] = 0
        weight_mask[size // 2 + 1 :] = 0
        self.register_buffer("weight_mask", weight_mask, persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.weight_mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    """One-hot codes [B, K, h, w] -> logits [B, K, h, w] of each position given those before it."""

    def __init__(self, codes, channels, layers):
        super().__init__()
        self.first = MaskedConv("A", codes, channels, 5)
        self.blocks = nn.ModuleList(MaskedConv("B", channels, channels, 3) for _ in range(layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, codes, 1))

    def forward(self, one_hot):
        h = self.first(one_hot)
        for block in self.blocks:
            h = h + block(F.relu(h))
        return self.out(h)


class VQVAE(AutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        if len(self.data_shape) != 3:
            raise ValueError("vq-vae needs images (channels x height x width), not vectors")
        channels, height, width = self.data_shape
        if height % 4 or width % 4:
            raise ValueError(f"vq-vae needs sides divisible by 4, not {height}x{width}")
        c, d, k = config.channels, config.embedding_dim, config.codebook_size
        self.latent_shape = (d, height // 4, width // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, c // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c // 2, c, 4, stride=2, padding=1),
            Residual(c),
            nn.ReLU(),
            nn.Conv2d(c, d, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(d, c, 3, padding=1),
            Residual(c),
            nn.ReLU(),
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c // 2, channels, 4, stride=2, padding=1),
        )
        self.register_buffer("codebook", torch.randn(k, d))
        self.register_buffer("cluster_size", torch.ones(k))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.prior_net = PixelCNN(k, config.prior_channels, config.prior_layers)

    # -- the autoencoder ------------------------------------------------------------------------

    def stages(self, epochs):
        return [("main", epochs), ("prior", self.config.prior_epochs or epochs)]

    def optimizer_groups(self):
        return {
            "autoencoder": OptimizerGroup([*self.encoder.parameters(), *self.decoder.parameters()]),
            "prior": OptimizerGroup(self.prior_net.parameters(), stage="prior"),
        }

    def indices(self, z_e):
        """Nearest codebook entry of each vector of the grid [B, D, h, w] -> [B, h, w]."""
        flat = z_e.permute(0, 2, 3, 1).flatten(0, 2).float()
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T + self.codebook.pow(2).sum(1)
        return distances.argmin(1).view(z_e.shape[0], *z_e.shape[2:])

    def embed(self, indices):
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2)

    def encode(self, x):
        return self.embed(self.indices(self.encoder(x)))

    def decode_logits(self, z):
        return self.decoder(z)

    def decode(self, z):
        return torch.sigmoid(self.decode_logits(z))

    def autoencoder_terms(self, x):
        z_e = self.encoder(x)
        indices = self.indices(z_e)
        quantized = self.embed(indices)
        commitment = (z_e.float() - quantized).pow(2).mean()
        z_q = z_e + (quantized - z_e).detach()  # straight-through
        logits = self.decode_logits(z_q).flatten(1).float()
        recon = F.binary_cross_entropy_with_logits(logits, x.flatten(1).float(), reduction="sum") / len(x)
        return recon, commitment, z_e, indices

    def prior_nll(self, indices):
        """The PixelCNN's negative log-likelihood of code grids [B, h, w], nats per grid."""
        one_hot = F.one_hot(indices, self.config.codebook_size).permute(0, 3, 1, 2).float()
        return F.cross_entropy(self.prior_net(one_hot), indices, reduction="sum") / len(indices)

    def loss(self, x):
        """Both stages' objectives summed: no gradient crosses from one to the other (the prior sees
        discrete codes), so this is what each stage minimises, and the test loss tracks both."""
        recon, commitment, _, indices = self.autoencoder_terms(x)
        prior_nll = self.prior_nll(indices)
        loss = recon + self.config.commitment * commitment + prior_nll
        return loss, {"recon": recon, "commitment": commitment, "prior_nll": prior_nll}

    @torch.no_grad()
    def update_codebook(self, z_e, indices):
        """The EMA codebook step (van den Oord et al., appendix), and a restart at a random encoder
        output for each entry that no longer wins any vector (cluster size under 1e-3 on average)."""
        decay, k = self.config.ema_decay, self.config.codebook_size
        flat = z_e.permute(0, 2, 3, 1).flatten(0, 2).float()
        one_hot = F.one_hot(indices.flatten(), k).float()
        self.cluster_size.mul_(decay).add_(one_hot.sum(0), alpha=1 - decay)
        self.embed_sum.mul_(decay).add_(one_hot.T @ flat, alpha=1 - decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))
        dead = self.cluster_size < 1e-3
        if dead.any():
            picks = flat[torch.randint(len(flat), (int(dead.sum()),), device=flat.device)]
            self.codebook[dead] = picks
            self.embed_sum[dead] = picks
            self.cluster_size[dead] = 1.0

    def train_step(self, x, step):
        if self.stage == "prior":
            with torch.no_grad():
                indices = self.indices(self.encoder(x))
            with step.autocast():
                loss = self.prior_nll(indices)
            step.update("prior", loss.float())
            return loss.detach().float()
        with step.autocast():
            recon, commitment, z_e, indices = self.autoencoder_terms(x)
            loss = recon + self.config.commitment * commitment
        step.update("autoencoder", loss.float())
        self.update_codebook(z_e.detach(), indices)
        return loss.detach().float()

    # -- sampling: the PixelCNN's raster-order draw, unrolled -----------------------------------

    def noise_dim(self, prior):
        return self.latent_shape[1] * self.latent_shape[2]

    def generate(self, eps, prior):
        k, (h, w) = self.config.codebook_size, self.latent_shape[1:]
        u = uniform_from_normal(eps)
        # Zeros [B, K, h, w] made by broadcasting from eps, which keeps the batch symbolic in the export.
        one_hot = torch.zeros(k, h, w, device=eps.device, dtype=eps.dtype) * eps[:, :1, None, None]
        for position in range(h * w):
            row, column = divmod(position, w)
            probabilities = torch.softmax(self.prior_net(one_hot)[:, :, row, column].float(), dim=1)
            choice = pick(torch.cumsum(probabilities, 1), u[:, position])  # [B, K]
            where = torch.zeros(h, w, device=eps.device, dtype=eps.dtype)
            where[row, column] = 1
            one_hot = one_hot + choice.unsqueeze(-1).unsqueeze(-1) * where
        return self.decode(torch.einsum("bkhw,kd->bdhw", one_hot, self.codebook))
