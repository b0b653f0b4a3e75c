"""vamp's prior is the mixture of its pseudo-inputs' posteriors, p(z) = 1/K sum_k q(z | u_k): the
fast form ``log_prior`` computes (matrix products, for ``zoo eval --nll``) is that density, near a
component and far from all of them, and it is a density (it integrates to one)."""

import math

import pytest
import torch

import zoo


def mixture_density_by_definition(model, z):
    mu, logvar = (t.double() for t in model.prior_components())
    per = -0.5 * (math.log(2 * math.pi) + logvar + (z.double().unsqueeze(-2) - mu).pow(2) / logvar.exp()).sum(-1)
    return torch.logsumexp(per, -1) - math.log(len(mu))


@pytest.mark.parametrize("where", ["at the components", "far away"])
def test_log_prior_is_the_mixture_of_the_pseudo_inputs_posteriors(where):
    torch.manual_seed(0)
    model = zoo.create_model("vamp", data_shape=(1, 6, 6), hidden=(16,), latent=3, pseudo_inputs=7).eval()
    with torch.no_grad():
        mu, logvar = model.prior_components()
        z = mu + 0.01 * torch.randn_like(mu) if where == "at the components" else 30 * torch.randn(7, 3)
        assert torch.allclose(
            model.log_prior(z).double(), mixture_density_by_definition(model, z), atol=1e-4, rtol=1e-6
        )
        # Any leading shape: [2, 7, 3] gives [2, 7].
        assert model.log_prior(z.expand(2, 7, 3)).shape == (2, 7)


def test_the_prior_integrates_to_one():
    """A 1-d latent on a fine grid: sum p(z) dz = 1."""
    torch.manual_seed(0)
    model = zoo.create_model("vamp", data_shape=(1, 4, 4), hidden=(8,), latent=1, pseudo_inputs=4).eval()
    grid = torch.linspace(-100, 100, 2_000_001, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        mass = float(model.log_prior(grid).exp().sum() * 1e-4)  # the grid step
    assert mass == pytest.approx(1.0, abs=1e-3)
