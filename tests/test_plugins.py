"""Plugin discovery through real installed entry points, failures, and in-code registration."""

import json
import textwrap
from dataclasses import dataclass

import pytest

import zoo
from zoo import registry

from helpers import assert_one_line_error, run_zoo

TINY_PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

import zoo
from zoo.model import AutoEncoder


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
'''


def install_distribution(site, dist_name, module, source, entry_points):
    """Lay out a distribution the way pip installs one: the module and its .dist-info."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))


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


def test_third_party_distribution_appears_without_core_changes(site):
    install_distribution(site, "zoo-tiny", "zoo_tiny", TINY_PLUGIN, {"tiny": "zoo_tiny"})
    listing = json.loads(run_zoo("list", "--json", env=env_with(site), check=True).stdout)
    assert {"name": "tiny-ae", "summary": "A third-party test autoencoder", "default_dataset": "mnist",
            "plugin": "tiny"} in listing
    info = json.loads(run_zoo("info", "tiny-ae", "--json", env=env_with(site), check=True).stdout)
    assert info["latent_shape"] == [3] and info["parameters"] == 784 * 3 + 3 + 3 * 784 + 784
    plugins = json.loads(run_zoo("plugins", "--json", env=env_with(site), check=True).stdout)
    tiny = next(p for p in plugins if p["name"] == "tiny")
    assert tiny["distribution"] == "zoo-tiny" and tiny["models"] == ["tiny-ae"]


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
        from zoo.plugins.pca_ae import PCAAutoEncoder

        register(zoo.ModelSpec(name="in-code-ae", config=_Cfg, build=PCAAutoEncoder,
                               default_dataset="points3d", summary="registered in code"))


class RaisingPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(zoo.ModelSpec(name="half-registered", config=_Cfg, build=None, default_dataset="points3d",
                               summary="never seen"))
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
