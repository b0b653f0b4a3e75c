"""wae's reconstruction cost: the paper's squared error by default (Tolstikhin et al. weigh the MMD
penalty against it), the Bernoulli cross-entropy on request; the penalty does its job, pulling the
codes towards the prior N(0, I) that samples are drawn from."""

import pytest
import torch

import zoo
from zoo.plugins.networks.wae import imq_mmd


def test_the_default_cost_is_the_squared_error_summed_over_pixels():
    torch.manual_seed(0)
    model = zoo.create_model("wae", data_shape=(1, 4, 4), hidden=(8,), latent=2)
    x = torch.rand(5, 1, 4, 4)
    bce = zoo.create_model("wae", data_shape=(1, 4, 4), hidden=(8,), latent=2, cost="bce")
    bce.load_state_dict(model.state_dict())
    with torch.no_grad():
        z = model.encode(x)
        expected = (model.decode(z) - x).pow(2).flatten(1).sum(1).mean()
        assert float(model.reconstruction(x, z)) == pytest.approx(float(expected), rel=1e-6)
        assert float(bce.reconstruction(x, z)) > float(expected)  # a cross-entropy, not the squared error


def test_an_unknown_cost_is_refused():
    with pytest.raises(ValueError, match="cost must be one of squared, bce"):
        zoo.create_model("wae", data_shape=(1, 4, 4), cost="l1")


def test_the_penalty_pulls_the_codes_towards_the_prior():
    """Codes trained with the penalty sit far closer to N(0, I) (by the same MMD) than codes trained
    on the reconstruction alone."""
    torch.manual_seed(0)
    data = (torch.rand(256, 1, 6, 6) < torch.linspace(0.1, 0.9, 36).view(1, 1, 6, 6)).float()

    def trained_codes(weight: float) -> torch.Tensor:
        torch.manual_seed(0)
        model = zoo.create_model("wae", data_shape=(1, 6, 6), hidden=(32,), latent=2, mmd_weight=weight)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(300):
            loss, _ = model.loss(data[torch.randint(0, len(data), (64,))])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return model.encode(data)

    prior = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    with_penalty, without = float(imq_mmd(trained_codes(10.0), prior)), float(imq_mmd(trained_codes(0.0), prior))
    assert with_penalty < 0.25 * without, (with_penalty, without)
