"""Plugin discovery through real installed entry points, failures, and in-code registration; every
hook has a test here named test_hook_<hook>, and a test fails when one has none."""

import inspect
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import assert_one_line_error, install_distribution, run_zoo

import zoo
from zoo.core import registry

TINY_PLUGIN = """
from dataclasses import dataclass

import torch
from torch import nn

import zoo
from zoo.models.base import AutoEncoder


@dataclass
class TinyConfig:
    latent: int = 3  # code size


class Tiny(AutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        self.enc = nn.Linear(self.data_dim, config.latent)
        self.dec = nn.Linear(config.latent, self.data_dim)

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, *self.data_shape)


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="tiny-ae", config=TinyConfig, build=Tiny,
                           default_dataset="mnist", summary="A third-party test autoencoder"))
"""


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


def env_with(site):
    return {"PYTHONPATH": str(site)}


def test_zoo_list_shows_the_five_models_with_dataset_and_plugin():
    rows = json.loads(run_zoo("list", "--json", check=True).stdout)
    by_name = {r["name"]: r for r in rows}
    assert {"pca-ae", "denoiser", "deep-ae", "conv-ae", "vae"} <= set(by_name)
    assert by_name["pca-ae"]["default_dataset"] == "points3d"
    assert by_name["vae"]["plugin"] == "vae" and by_name["vae"]["summary"]
    table = run_zoo("list", check=True).stdout
    assert "conv-ae" in table and "points3d" in table


def test_hook_register_models_from_a_third_party_distribution(site):
    install_distribution(site, "zoo-tiny", "zoo_tiny", TINY_PLUGIN, {"tiny": "zoo_tiny"})
    listing = json.loads(run_zoo("list", "--json", env=env_with(site), check=True).stdout)
    assert {
        "name": "tiny-ae",
        "summary": "A third-party test autoencoder",
        "default_dataset": "mnist",
        "plugin": "tiny",
    } in listing
    info = json.loads(run_zoo("info", "tiny-ae", "--json", env=env_with(site), check=True).stdout)
    assert info["latent_shape"] == [3] and info["parameters"] == 784 * 3 + 3 + 3 * 784 + 784
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    tiny = next(p for p in plugins if p["name"] == "tiny")
    assert tiny["distribution"] == "zoo-tiny" and tiny["models"] == ["tiny-ae"]


# The recommended form: the plugin module names its network by import path and needs no torch;
# the network's module is imported when a model is built.
LAZY_PLUGIN = """
from dataclasses import dataclass

import zoo


@dataclass
class LazyConfig:
    latent: int = 3


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="lazy-ae", config=LazyConfig, build="zoo_lazy_net:Tiny",
                           default_dataset="mnist", summary="A third-party autoencoder named by path"))
"""


def install_lazy_plugin(site, network_source):
    install_distribution(site, "zoo-lazy", "zoo_lazy", LAZY_PLUGIN, {"lazy": "zoo_lazy"})
    if network_source is not None:
        (site / "zoo_lazy_net.py").write_text(network_source)


def test_a_missing_network_module_is_reported_by_zoo_plugins_and_at_build(site, tmp_path):
    install_lazy_plugin(site, None)
    assert "lazy-ae" in run_zoo("list", env=env_with(site), check=True).stdout
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    lazy = next(p for p in plugins if p["name"] == "lazy")
    assert "no module 'zoo_lazy_net'" in lazy["error"]
    result = run_zoo("train", "lazy-ae", "--epochs", "1", "--out", tmp_path / "run", env=env_with(site))
    assert_one_line_error(result, "cannot import zoo_lazy_net:Tiny", "ModuleNotFoundError")
    assert not (tmp_path / "run").exists()


def test_a_network_module_that_raises_on_import_is_one_line_at_build(site):
    install_lazy_plugin(site, "raise RuntimeError('network kaboom')\n")
    assert_one_line_error(run_zoo("info", "lazy-ae", env=env_with(site)), "zoo_lazy_net:Tiny", "network kaboom")


def test_an_import_path_without_a_colon_is_a_registration_error(site):
    install_distribution(
        site,
        "zoo-lazy",
        "zoo_lazy",
        LAZY_PLUGIN.replace("zoo_lazy_net:Tiny", "zoo_lazy_net.Tiny"),
        {"lazy": "zoo_lazy"},
    )
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    assert "'package.module:Name'" in next(p for p in plugins if p["name"] == "lazy")["error"]
    assert "lazy-ae" not in run_zoo("list", env=env_with(site), check=True).stdout


def readme_plugin_files() -> dict:
    """The third-party package of docs/plugins.md, file by file: each ```python block that starts with a
    comment naming its file."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    section = text.split("## An architecture", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n# (\S+)\n(.*?)^```", section, re.S | re.M)
    return {path: body for path, body in blocks}


def test_the_readme_plugin_package_works_as_written_and_lists_without_torch(site, tmp_path):
    files = readme_plugin_files()
    assert set(files) == {"zoo_tiny/__init__.py", "zoo_tiny/model.py"}, "docs/plugins.md's plugin example changed shape"
    install_distribution(site, "zoo-tiny", "zoo_tiny", files, {"tiny": "zoo_tiny"})
    probe = (
        "import sys; from zoo.core import registry; print(registry.get_spec('tiny-ae').summary); "
        "print('torch' in sys.modules)"
    )
    listed = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, **env_with(site)}, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert listed == ["A tiny linear-sigmoid autoencoder", "False"]
    info = json.loads(run_zoo("info", "tiny-ae", "--json", env=env_with(site), check=True).stdout)
    assert info["latent_shape"] == [3] and info["train_defaults"]["epochs"] == 5
    run_zoo(
        "train", "tiny-ae", "--epochs", "1", "--subset", "64", "--out", tmp_path / "run", env=env_with(site), check=True
    )
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_plugin_that_raises_on_import_is_reported_and_skipped(site):
    install_distribution(site, "zoo-broken", "zoo_broken", "raise RuntimeError('kaboom')\n", {"broken": "zoo_broken"})
    listing = run_zoo("list", env=env_with(site), check=True)
    assert "vae" in listing.stdout
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    broken = next(p for p in plugins if p["name"] == "broken")
    assert "RuntimeError: kaboom" in broken["error"]
    assert "FAILED" in run_zoo("plugins", env=env_with(site), check=True).stdout


def test_strict_mode_makes_plugin_failures_fatal(site):
    install_distribution(site, "zoo-broken", "zoo_broken", "raise RuntimeError('kaboom')\n", {"broken": "zoo_broken"})
    result = run_zoo("list", env={**env_with(site), "ZOO_STRICT_PLUGINS": "1"})
    assert_one_line_error(result, "broken", "kaboom")


def test_a_duplicate_model_name_is_an_error_naming_both_plugins(site):
    clash = TINY_PLUGIN.replace('name="tiny-ae"', 'name="vae"')
    install_distribution(site, "zoo-clash", "zoo_clash", clash, {"clash": "zoo_clash"})
    result = run_zoo("list", env=env_with(site))
    assert_one_line_error(result, "'vae'", "'clash'")


def test_unknown_model_is_one_line_with_suggestions_and_exit_2():
    result = run_zoo("info", "conv_ae")
    assert result.returncode == 2
    assert_one_line_error(result, "did you mean 'conv-ae'")


@dataclass
class _Cfg:
    latent: int = 2


class InCodePlugin:
    """A plugin registered from code, the way tests and notebooks do it."""

    @zoo.hookimpl
    def register_models(self, register):
        from zoo.plugins.networks.pca_ae import PCAAutoEncoder

        register(
            zoo.ModelSpec(
                name="in-code-ae",
                config=_Cfg,
                build=PCAAutoEncoder,
                default_dataset="points3d",
                summary="registered in code",
            )
        )


class RaisingPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="half-registered", config=_Cfg, build=None, default_dataset="points3d", summary="never seen"
            )
        )
        raise ValueError("registration broke")


@pytest.fixture
def plugin_in_code():
    def add(obj, name):
        registry.register_plugin(obj, name)
        added.append(name)

    added = []
    yield add
    for name in added:
        registry.unregister_plugin(name)


def test_plugin_registered_in_code_is_listed_and_built(plugin_in_code):
    plugin_in_code(InCodePlugin(), "in-code")
    assert "in-code-ae" in zoo.list_models()
    assert zoo.create_model("in-code-ae").latent_shape == (2,)
    assert registry.current().models["in-code-ae"].plugin == "in-code"


def test_registration_error_skips_the_plugin_and_keeps_nothing_it_registered(plugin_in_code):
    plugin_in_code(RaisingPlugin(), "raising")
    assert "half-registered" not in zoo.list_models()
    assert "vae" in zoo.list_models()
    assert "registration broke" in registry.current().infos["raising"].error


def test_unregistered_plugin_disappears(plugin_in_code):
    registry.register_plugin(InCodePlugin(), "temporary")
    assert "in-code-ae" in zoo.list_models()
    registry.unregister_plugin("temporary")
    assert "in-code-ae" not in zoo.list_models()


COMMAND_PLUGIN = """
import click

import zoo


@zoo.hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("name")
    def greet(name):
        \"\"\"Say hello from a third-party plugin.\"\"\"
        click.echo(f"hello {name} from a plugin")
"""


def test_hook_register_commands_adds_a_command_to_help_and_runs_it(site):
    install_distribution(site, "zoo-greet", "zoo_greet", COMMAND_PLUGIN, {"greet": "zoo_greet"})
    help_text = run_zoo("--help", env=env_with(site), check=True).stdout
    assert "greet" in help_text and "Say hello from a third-party plugin." in help_text
    assert run_zoo("greet", "ada", env=env_with(site), check=True).stdout == "hello ada from a plugin\n"
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    assert next(p for p in plugins if p["name"] == "greet")["commands"] == ["greet"]


def test_a_command_plugin_that_raises_is_isolated_and_reported(site):
    source = COMMAND_PLUGIN + "\n    raise RuntimeError('command hook broke')\n"
    install_distribution(site, "zoo-greet", "zoo_greet", source, {"greet": "zoo_greet"})
    help_text = run_zoo("--help", env=env_with(site), check=True).stdout
    assert "greet" not in help_text and "export" in help_text  # nothing half-added; the rest works
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    broken = next(p for p in plugins if p["name"] == "greet")
    assert "register_commands failed: RuntimeError: command hook broke" in broken["error"]
    assert broken["commands"] == []
    strict = run_zoo("list", env={**env_with(site), "ZOO_STRICT_PLUGINS": "1"})
    assert_one_line_error(strict, "'greet'", "command hook broke")


def test_a_plugin_cannot_silently_replace_a_command(site):
    clash = COMMAND_PLUGIN.replace("def greet(name)", "def train(name)")
    install_distribution(site, "zoo-clash", "zoo_clash", clash, {"clash": "zoo_clash"})
    assert_one_line_error(run_zoo("--help", env=env_with(site)), "'train'", "the core", "'clash'")


DATASET_PLUGIN = """
import torch

import zoo
from zoo.data import Splits


def load(data_dir=None):
    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(200, 2, generator=gen)
    mix = torch.tensor([[1.0, 0.5, 0.0, 2.0], [0.0, 1.0, -1.0, 0.5]])
    points = codes @ mix + 0.01 * torch.randn(200, 4, generator=gen)
    return Splits(train=points[:150], test=points[150:], source="generated by a plugin")


@zoo.hookimpl
def register_datasets(register):
    register(zoo.DatasetSpec(name="plane4d", data_shape=(4,), summary="a plane in 4-d", load=load,
                             generated=True))
"""


def test_hook_register_datasets_feeds_zoo_train(site, tmp_path):
    install_distribution(site, "zoo-plane", "zoo_plane", DATASET_PLUGIN, {"plane": "zoo_plane"})
    rows = json.loads(run_zoo("datasets", "--json", env=env_with(site), check=True).stdout)
    row = next(r for r in rows if r["name"] == "plane4d")
    assert row["plugin"] == "plane" and row["found"] and row["where"] == "generated in memory"
    run = tmp_path / "run"
    run_zoo("train", "pca-ae", "--dataset", "plane4d", "--epochs", "3", "--out", run, env=env_with(site), check=True)
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "plane4d" and config["data_shape"] == [4]
    assert config["data_source"] == "generated by a plugin"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_every_hook_has_a_test():
    """As datasette does: a new hook without a test_hook_<name> test here fails the suite."""
    hooks = [name for name, fn in inspect.getmembers(zoo.core.hookspecs, inspect.isfunction) if hasattr(fn, "zoo_spec")]
    assert hooks, "no hookspecs found"
    tests = [name for name in dir(sys.modules[__name__]) if name.startswith("test_hook_")]
    untested = [hook for hook in hooks if not any(t.startswith(f"test_hook_{hook}") for t in tests)]
    assert not untested, f"hooks without a test_hook_<name> test: {untested}"
