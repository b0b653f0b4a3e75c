"""``zoo.AutoEncoder``: the one interface the training loop, evaluation and export talk to."""

import math

import torch
from torch import nn


class GaussianPrior(nn.Module):
    """The latent prior samples are drawn from: z = mean + scale_tril @ eps, eps ~ N(0, I).

    A VAE's prior is fixed at N(0, I). A deterministic autoencoder has no prior of its own, so the
    training loop fits a full-covariance Gaussian to its training latents; the buffers are saved with
    the weights and folded into the exported generator.
    """

    def __init__(self, dim: int, fixed: bool = False):
        super().__init__()
        self.fixed = fixed
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale_tril", torch.eye(dim))

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> None:
        if self.fixed:
            return
        z = z.flatten(1).double()
        cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1])
        # A little jitter keeps the Cholesky factor defined when a latent dimension is dead.
        jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
        cov = cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        self.mean.copy_(z.mean(0).to(self.mean.dtype))
        self.scale_tril.copy_(torch.linalg.cholesky(cov).to(self.scale_tril.dtype))

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return self.mean + eps @ self.scale_tril.T

    def describe(self) -> dict:
        """JSON-ready description, stored in every exported artifact's ``zoo.prior``.

        The keys are the ``zoo.prior`` format, which ``zoo.export.metadata`` owns (and documents):
        change them there too. Each part's file carries what ``prior_for_part`` keeps of this.
        """
        std = (self.scale_tril @ self.scale_tril.T).diagonal().sqrt()
        return {
            "kind": "standard_normal" if self.fixed else "gaussian",
            "mean": self.mean.tolist(),
            "std": std.tolist(),
            "scale_tril": self.scale_tril.tolist(),
        }


NORMALIZE_CHOICES = ("none", "pixel", "channel")
# A pixel that never changes in training (a digit's border) would divide by zero; this floor keeps an
# anomaly there large but finite.
MIN_INPUT_STD = 0.05


class AutoEncoder(nn.Module):
    """Base class of every architecture in the zoo.

    Subclasses build their layers in ``__init__(config, data_shape)``, set ``self.latent_shape`` and
    implement ``encode``, ``decode`` and ``loss``. Inputs are float batches ``[B, *data_shape]``.
    """

    latent_shape: tuple = ()
    # Training progress in epochs (2.5: halfway through the third epoch), set by the training loop
    # before every step, so an objective can change over training (a VAE's KL warm-up) without the
    # loop knowing which model it trains. A plain float: it is not saved with the weights.
    epochs_done: float = 0.0

    def __init__(self, config, data_shape):
        super().__init__()
        self.config = config
        self.data_shape = tuple(data_shape)
        self._set_up_normalization(getattr(config, "normalize", "none"))

    def _set_up_normalization(self, kind: str) -> None:
        """``normalize`` (a model setting): "pixel" or "channel" standardizes what the encoder sees,
        (x - mean) / std with the training split's statistics (``fit_input_normalization``), kept as
        buffers with the weights. It wraps the encoder's entry (``posterior`` for a VAE, else
        ``encode``), so every exported graph that encodes applies it and an app still feeds raw
        pixels; reconstructions and their targets stay in the data's range."""
        if kind not in NORMALIZE_CHOICES:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_CHOICES)}, not {kind!r}")
        self.normalize = kind
        if kind == "none":
            return
        if kind == "pixel":
            shape = self.data_shape
        else:  # one statistic per channel of an image, one for all the entries of a vector
            shape = (self.data_shape[0],) + (1,) * (len(self.data_shape) - 1) if len(self.data_shape) == 3 else (1,)
        self.register_buffer("input_mean", torch.zeros(shape))
        self.register_buffer("input_std", torch.ones(shape))
        entry = "posterior" if hasattr(type(self), "posterior") else "encode"
        raw = getattr(self, entry)
        setattr(self, entry, lambda x: raw((x - self.input_mean) / self.input_std))

    @torch.no_grad()
    def fit_input_normalization(self, x: torch.Tensor) -> None:
        """The statistics of ``normalize`` from training samples x [N, *data_shape] (floats)."""
        if self.normalize == "none":
            return
        x = x.double()
        if self.normalize == "pixel":
            mean, std = x.mean(0), x.std(0)
        elif len(self.data_shape) == 3:
            per_channel = x.transpose(0, 1).reshape(self.data_shape[0], -1)
            mean, std = per_channel.mean(1).view(-1, 1, 1), per_channel.std(1).view(-1, 1, 1)
        else:
            mean, std = x.mean().view(1), x.std().view(1)
        self.input_mean.copy_(mean.float())
        self.input_std.copy_(std.clamp_min(MIN_INPUT_STD).float())

    @property
    def data_dim(self) -> int:
        return math.prod(self.data_shape)

    @property
    def latent_dim(self) -> int:
        return math.prod(self.latent_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, *data_shape] -> the code [B, *latent_shape] (deterministic: a VAE returns its mean)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[B, *latent_shape] -> reconstruction [B, *data_shape] in the data's range."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor):
        """-> (scalar loss to minimise, dict of metrics: tensors or floats).

        The default is the mean squared reconstruction error; models with another objective
        (a VAE's ELBO, a denoiser's corrupted input) override it."""
        mse = nn.functional.mse_loss(self.reconstruct(x), x)
        return mse, {"mse": mse}

    def forward(self, x: torch.Tensor):
        # The training step calls the module itself, so DDP's gradient hooks and torch.compile
        # see the whole loss computation.
        return self.loss(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # What ``score`` measures, in words: stored in the run's threshold file and the scorer's metadata.
    score_definition = "mean squared reconstruction error per element"
    # Said by `zoo score` beside the scores when the model's score is known not to separate anomalies
    # (None: nothing to say).
    score_caveat = None

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """[B, *data_shape] -> [B] anomaly scores, higher for inputs less like the training data;
        deterministic, so `zoo score`, the exported scorer and a server give the same numbers. The
        default is how badly the model reconstructs each input; a model with a likelihood overrides
        it with its own (a VAE's negative ELBO)."""
        return (self.reconstruct(x).float() - x.float()).pow(2).flatten(1).mean(1)

    def encoder_outputs(self, x: torch.Tensor) -> dict:
        """Named outputs of the exported encoder graph; the first is the code, equal to encode(x)."""
        return {"z": self.encode(x)}

    def make_prior(self) -> GaussianPrior:
        """The latent prior; deterministic models get one fitted to their training latents."""
        return GaussianPrior(self.latent_dim, fixed=False)

    def eval_terms(self, x: torch.Tensor) -> dict:
        """Model-specific per-sample values [B], averaged over the test split by ``zoo eval``
        beside the reconstruction errors every model gets (a VAE adds its negative ELBO)."""
        return {}

    def log_importance_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """[B, *data_shape], k -> [B, k]: log p(x|z_j) + log p(z_j) - log q(z_j|x) for k draws z_j ~ q(z|x).

        ``zoo eval --nll`` estimates log p(x) from these (importance sampling). Only a model with a
        likelihood has them; the default says there is none."""
        raise NotImplementedError(f"{type(self).__name__} has no likelihood (no log_importance_weights)")

    @property
    def has_likelihood(self) -> bool:
        return type(self).log_importance_weights is not AutoEncoder.log_importance_weights

    def extra_metrics(self, train: torch.Tensor) -> dict:
        """Metrics that need the whole training split (none by default)."""
        return {}

    # -- Training: optimizers, the per-batch update and stages (see docs/plugins.md) ----------------
    # The stage the training loop is in ("main" unless ``stages`` names more), set with epochs_done.
    stage: str = "main"

    def stages(self, epochs: int) -> list:
        """[(stage name, epochs)] run in order by the one training loop; ``epochs`` is the run's
        ``--epochs``. The default is one stage, "main". A model with a second stage (a prior over its
        codes trained once the codes are learnt) returns more; each epoch is checkpointed alike."""
        return [("main", epochs)]

    def optimizer_groups(self) -> dict:
        """{name: OptimizerGroup}: each group is its own Adam with its own learning-rate schedule,
        saved in the loop state. The default is one group, "model", of every parameter."""
        return {"model": OptimizerGroup(list(self.parameters()))}

    def train_step(self, x: torch.Tensor, step: "TrainStep") -> torch.Tensor:
        """One batch of training; returns the scalar loss reported for it. The default is one loss
        (``step.forward``: the model itself, as DDP and --compile wrap it) and one step of the
        "model" optimizer. A model that needs more (a discriminator's step, a codebook update, a
        second stage's objective) overrides this, calling ``step.update(name, loss)`` per group."""
        with step.autocast():
            loss, _ = step.forward(x)
        loss = loss.float()
        step.update("model", loss)
        return loss

    # -- Sampling: what the exported generator computes --------------------------------------------

    def noise_dim(self, prior) -> int:
        """Width of the N(0, I) noise the generator takes: the prior's (a mixture needs more noise
        than dimensions, to pick a component), or the latent size."""
        return int(getattr(prior, "noise_dim", self.latent_dim))

    def generate(self, eps: torch.Tensor, prior) -> torch.Tensor:
        """eps ~ N(0, I) [B, noise_dim] -> samples [B, *data_shape]; traced into generator.onnx, so
        deterministic given eps. The default decodes prior(eps); a model whose prior is part of its
        own network (learned pseudo-inputs, an autoregressive prior over codes) overrides it."""
        return self.decode(prior(eps).view(-1, *self.latent_shape))


class OptimizerGroup:
    """Parameters that share one Adam optimizer, in stage ``stage``; ``lr_scale`` multiplies the
    run's learning rate and ``weight_decay`` (None: the run's) is the group's own (an L2 penalty on
    a decoder's weights, as RAE's)."""

    def __init__(self, params, stage: str = "main", lr_scale: float = 1.0, weight_decay: float | None = None):
        self.params = list(params)
        self.stage = stage
        self.lr_scale = lr_scale
        self.weight_decay = weight_decay


class TrainStep:
    """What ``AutoEncoder.train_step`` is given: the forward pass as the loop wraps it, the autocast
    context, and ``update(group, loss)``: zero the group's (or groups') gradients, backpropagate ``loss``, clip
    them (the run's ``grad_clip``) and step the group's optimizer."""

    def __init__(self, forward, autocast, optimizers: dict, grad_clip: float):
        self.forward = forward
        self.autocast = autocast
        self.optimizers = optimizers
        self.grad_clip = grad_clip

    def update(self, group, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """``group``: one group's name, or a tuple of names that one backward pass feeds (each group
        keeps its own Adam, e.g. its own weight decay)."""
        optimizers = [self.optimizers[name] for name in ((group,) if isinstance(group, str) else group)]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward(retain_graph=retain_graph)
        if self.grad_clip > 0:
            params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        for optimizer in optimizers:
            optimizer.step()
