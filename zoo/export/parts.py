"""The exported parts, defined once: for each of encoder, decoder and generator (and the scorer of
a run with an anomaly threshold), the module that is exported, its input and output names, and how
to make a valid input batch. The exporter, the benchmark and the tests all take their parts from here.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from zoo.export.metadata import prior_for_part

PART_NAMES = ("encoder", "decoder", "generator")
EXAMPLE_BATCH = 2  # torch.export specialises a batch of 1 to a constant; 2 keeps it symbolic


class EncoderGraph(nn.Module):
    """x -> the model's named encoder outputs, in order (z, or mu and logvar)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(self.model.encoder_outputs(x).values())


class DecoderGraph(nn.Module):
    """z [batch, *latent_shape] -> x_hat [batch, *data_shape]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decode(z)


class GeneratorGraph(nn.Module):
    """eps ~ N(0, I) [batch, noise_dim] -> x_hat: ``AutoEncoder.generate``, whose prior (a fitted
    Gaussian's mean and Cholesky factor, a mixture, a learned prior of the model's own) becomes part
    of the graph, so a caller only needs a standard-normal random number generator."""

    def __init__(self, model, prior):
        super().__init__()
        self.model = model
        self.prior = prior

    def forward(self, eps):
        return self.model.generate(eps, self.prior)


class ScorerGraph(nn.Module):
    """x -> (score [batch], anomalous [batch]): the model's own anomaly score (``AutoEncoder.score``)
    and whether it lies above the threshold the run set on held-out normal samples, a constant of
    the graph."""

    def __init__(self, model, threshold: float):
        super().__init__()
        self.model = model
        self.register_buffer("threshold", torch.tensor(float(threshold), dtype=torch.float32))

    def forward(self, x):
        score = self.model.score(x).float()
        return score, score > self.threshold


@dataclass
class Part:
    name: str  # "encoder", "decoder", "generator" or "scorer"
    module: nn.Module
    input_name: str
    output_names: list
    example: torch.Tensor  # the batch the exporter traces with
    make_input: object  # make_input(batch, generator) -> a valid input batch (seeded torch.Generator)
    prior: dict  # what zoo.prior holds in this file (zoo.export.metadata.prior_for_part)


def random_data(model):
    """make_input of the parts that take data: uniform [0, 1) batches of the model's data shape."""
    return lambda batch, gen: torch.rand(batch, *model.data_shape, generator=gen)


def make_parts(model, prior) -> list:
    """The three parts of a model and its latent prior, in PART_NAMES order."""
    latent_dim, noise_dim = math.prod(model.latent_shape), model.noise_dim(prior)
    data = random_data(model)

    def eps(batch, gen):
        return torch.randn(batch, noise_dim, generator=gen)

    def code(batch, gen):
        # Latents as the prior spreads them, so the decoder is checked where it is used; drawn
        # with the prior's own noise width (a model's generate may take more noise than its prior).
        with torch.no_grad():
            prior_noise = torch.randn(batch, getattr(prior, "noise_dim", latent_dim), generator=gen)
            return prior(prior_noise).view(batch, *model.latent_shape)

    gen = torch.Generator().manual_seed(0)
    x = data(EXAMPLE_BATCH, gen)
    with torch.no_grad():
        outputs = model.encoder_outputs(x)
        code_ok = torch.allclose(next(iter(outputs.values())), model.encode(x), rtol=1e-5, atol=1e-6)
    if not code_ok:
        # The runtime's Encoder.encode returns the first output as "the code"; keep that honest.
        raise ValueError("the first of encoder_outputs() must be encode(x), the code")

    described = prior.describe()
    generator_prior = prior_for_part(described, "generator")
    if noise_dim != latent_dim:  # the generator's noise is not one draw per latent dimension
        generator_prior["noise_dim"] = noise_dim
    return [
        Part("encoder", EncoderGraph(model), "x", list(outputs), x, data, prior_for_part(described, "encoder")),
        Part(
            "decoder",
            DecoderGraph(model),
            "z",
            ["x_hat"],
            code(EXAMPLE_BATCH, gen),
            code,
            prior_for_part(described, "decoder"),
        ),
        Part(
            "generator",
            GeneratorGraph(model, prior),
            "eps",
            ["x_hat"],
            eps(EXAMPLE_BATCH, gen),
            eps,
            generator_prior,
        ),
    ]


def make_scorer_part(model, prior, threshold: float) -> Part:
    """The scorer of a model whose run set an anomaly threshold; checked on data as the encoder is."""
    data = random_data(model)
    x = data(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    return Part(
        "scorer",
        ScorerGraph(model, threshold),
        "x",
        ["score", "anomalous"],
        x,
        data,
        prior_for_part(prior.describe(), "scorer"),
    )
