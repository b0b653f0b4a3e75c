"""Every registered model gets the same checks (timm-style, parametrized over the registry)."""

import math

import pytest
import torch

import zoo

MODELS = zoo.list_models()


def test_the_five_seed_architectures_are_registered():
    assert {"pca-ae", "denoiser", "deep-ae", "conv-ae", "vae"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_builds_round_trips_and_trains(name):
    torch.manual_seed(0)
    spec = zoo.get_spec(name)
    data_shape = zoo.get_dataset(spec.default_dataset).data_shape
    model = zoo.create_model(name)
    assert isinstance(model, zoo.AutoEncoder)
    assert tuple(model.data_shape) == tuple(data_shape)

    x = torch.rand(5, *data_shape)
    z = model.encode(x)
    assert tuple(z.shape) == (5, *model.latent_shape)
    assert model.decode(z).shape == x.shape

    loss, metrics = model.loss(x)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    assert all(math.isfinite(float(torch.as_tensor(v).detach())) for v in metrics.values())
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("name", MODELS)
def test_encoder_outputs_are_deterministic_and_named(name):
    model = zoo.create_model(name).eval()
    x = torch.rand(3, *model.data_shape)
    first, second = model.encoder_outputs(x), model.encoder_outputs(x)
    assert first.keys() == second.keys() and first
    for key in first:
        torch.testing.assert_close(first[key], second[key])


def test_overrides_change_the_architecture():
    model = zoo.create_model("pca-ae", data_shape=(1, 28, 28), latent=100)
    assert model.latent_shape == (100,)
    assert model.encoder.weight.shape == (100, 784)  # the lecture's 784 -> 100 -> 784 autoencoder


def test_vae_loss_is_bce_plus_kl_in_nats_per_image():
    torch.manual_seed(0)
    model = zoo.create_model("vae")
    x = torch.rand(8, 1, 28, 28).round()
    loss, metrics = model.loss(x)
    assert metrics["neg_elbo"] > 0 and metrics["kl"] >= 0
    torch.testing.assert_close(metrics["neg_elbo"], metrics["recon"] + metrics["kl"])
    # An untrained decoder's outputs hover near 1/2: about log(2) nats per pixel.
    assert 0.5 * 784 * math.log(2) < metrics["recon"] < 2 * 784 * math.log(2)


def test_denoiser_target_is_the_clean_input():
    torch.manual_seed(0)
    model = zoo.create_model("denoiser", sigma=0.5)
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(1)
    loss, _ = model.loss(x)
    torch.manual_seed(1)
    noisy = model.corrupt(x)
    expected = torch.nn.functional.mse_loss(model.reconstruct(noisy), x)
    torch.testing.assert_close(loss, expected)


def test_unknown_model_suggests_close_names():
    with pytest.raises(zoo.ZooError, match="did you mean 'vae'"):
        zoo.get_spec("vea")


def test_list_models_wildcards():
    assert zoo.list_models("*-ae") == ["conv-ae", "deep-ae", "pca-ae"]
