"""The training contract a third-party model can use without the loop knowing it: several optimizer
groups, its own per-batch update and a second stage, all checkpointed so that --resume gives the
run an uninterrupted one gives."""

import json
from dataclasses import dataclass

import pytest
import torch
from interrupted import train_until_interrupted
from safetensors.torch import load_file
from torch import nn

import zoo
from zoo.core import registry
from zoo.models.base import AutoEncoder, OptimizerGroup
from zoo.train.loop import train
from zoo.train.run_folder import load_state


@dataclass
class CriticConfig:
    latent: int = 3
    prior_epochs: int = 1


class CriticAE(AutoEncoder):
    """An autoencoder with a critic on its codes (its own Adam, stepped between the autoencoder's
    steps) and a second stage that learns the mean of its codes: three groups, two stages."""

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        self.enc = nn.Linear(self.data_dim, config.latent)
        self.dec = nn.Linear(config.latent, self.data_dim)
        self.critic = nn.Linear(config.latent, 1)
        self.code_mean = nn.Parameter(torch.zeros(config.latent))

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, *self.data_shape)

    def stages(self, epochs):
        return [("main", epochs), ("prior", self.config.prior_epochs)]

    def optimizer_groups(self):
        return {
            "autoencoder": OptimizerGroup([*self.enc.parameters(), *self.dec.parameters()]),
            "critic": OptimizerGroup(self.critic.parameters(), lr_scale=0.5),
            "prior": OptimizerGroup([self.code_mean], stage="prior"),
        }

    def train_step(self, x, step):
        if self.stage == "prior":
            with torch.no_grad():
                z = self.encode(x)
            loss = (z - self.code_mean).pow(2).sum(1).mean()
            step.update("prior", loss)
            return loss
        z = self.encode(x)
        critic_loss = self.critic(z.detach()).pow(2).mean()
        step.update("critic", critic_loss)
        loss = nn.functional.mse_loss(self.decode(z), x) + 0.01 * self.critic(z).mean()
        step.update("autoencoder", loss)
        return loss


class CriticPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="critic-ae", config=CriticConfig, build=CriticAE, default_dataset="mnist", summary="contract test"
            )
        )


@pytest.fixture
def critic_plugin():
    registry.register_plugin(CriticPlugin(), "critic-plugin")
    yield
    registry.unregister_plugin("critic-plugin")


OPTIONS = dict(epochs=2, subset=256, batch_size=64, seed=5)


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_groups_steps_and_a_second_stage_run_in_the_one_loop(critic_plugin, tmp_path):
    run = train("critic-ae", tmp_path / "run", **OPTIONS)
    assert [r["stage"] for r in records(run)] == ["main", "main", "prior"]
    state = load_state(run / "state.safetensors")
    assert set(state["optimizer"]) == set(state["scheduler"]) == {"autoencoder", "critic", "prior"}
    initial = {name: o["param_groups"][0]["initial_lr"] for name, o in state["optimizer"].items()}
    assert initial["critic"] == pytest.approx(0.5 * initial["autoencoder"])
    weights = load_file(run / "model.safetensors")
    assert weights["code_mean"].abs().sum() > 0  # the second stage trained its group


def test_each_group_only_moves_in_its_own_stage(critic_plugin, tmp_path, monkeypatch):
    train_until_interrupted(monkeypatch, "critic-ae", tmp_path / "run", **{**OPTIONS, "epochs": 1})
    after_main = load_file(tmp_path / "run" / "model.safetensors")
    assert torch.equal(after_main["code_mean"], torch.zeros(3))  # not trained in the main stage
    train(None, resume=tmp_path / "run")
    after_prior = load_file(tmp_path / "run" / "model.safetensors")
    assert torch.equal(after_main["enc.weight"], after_prior["enc.weight"])  # not trained in "prior"
    assert not torch.equal(after_main["code_mean"], after_prior["code_mean"])


def test_a_resumed_two_stage_run_matches_the_uninterrupted_one(critic_plugin, tmp_path, monkeypatch):
    whole = train("critic-ae", tmp_path / "whole", **OPTIONS)
    train_until_interrupted(monkeypatch, "critic-ae", tmp_path / "split", **OPTIONS)
    train(None, resume=tmp_path / "split")
    a, b = load_file(whole / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["train_loss"] for r in records(whole)] == [r["train_loss"] for r in records(tmp_path / "split")]


def test_a_group_in_an_undeclared_stage_is_one_error(critic_plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(CriticAE, "stages", lambda self, epochs: [("main", epochs)])
    with pytest.raises(zoo.ZooError, match="'prior' is in stage 'prior'"):
        train("critic-ae", tmp_path / "run", **OPTIONS)
