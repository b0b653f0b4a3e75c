"""The `zoo info` cache (zoo/models/facts.py): an entry that is not a well-formed answer is built
again, never an error, and the key changes with everything that can change the answer: the build
reference the spec names and the source of the module that holds it, with what it imports beside it.

The networks here are plain classes in a package written to a temporary folder: no torch needed."""

import json
import sys
import textwrap
from dataclasses import dataclass

import pytest

from zoo.core.specs import ImportPath, ModelSpec
from zoo.models import facts as model_facts

NETWORK = """
    from ..common.sizes import LATENT


    class Parameter:
        def __init__(self, n):
            self.n = n

        def numel(self):
            return self.n


    class Net:
        def __init__(self, config, data_shape):
            self.latent_shape = (LATENT,)
            BUILT.append(type(self).__name__)

        def parameters(self):
            return [Parameter(10), Parameter(LATENT)]


    class Wider(Net):
        def parameters(self):
            return [Parameter(100)]


    BUILT = []
"""


@dataclass
class Config:
    width: int = 8


@pytest.fixture
def package(tmp_path, monkeypatch):
    """``netpkg`` (nets/net.py importing common/sizes.py, in another folder of the package)
    importable from a fresh folder, and an empty cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "site" / "netpkg"
    for folder in (root, root / "nets", root / "common"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (root / "nets" / "net.py").write_text(textwrap.dedent(NETWORK))
    (root / "common" / "sizes.py").write_text("LATENT = 4\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield root
    for name in [m for m in sys.modules if m == "netpkg" or m.startswith("netpkg.")]:
        del sys.modules[name]


def spec(build) -> ModelSpec:
    return ModelSpec(name="toy", config=Config, build=build, default_dataset="mnist", summary="a toy")


def facts(build):
    return model_facts.model_facts(spec(build), Config(), (1, 28, 28), "0.1")


def built() -> list:
    return sys.modules["netpkg.nets.net"].BUILT


@pytest.mark.parametrize("build", ["netpkg.nets.net:Net", "class"], ids=["import path", "class"])
def test_the_second_answer_comes_from_the_cache(package, build):
    if build == "class":
        import netpkg.nets.net

        build = netpkg.nets.net.Net
    else:
        build = ImportPath(build)
    assert facts(build) == {"latent_shape": [4], "parameters": 14}
    assert facts(build) == {"latent_shape": [4], "parameters": 14}
    assert built() == ["Net"]


@pytest.mark.parametrize(
    "entry",
    [
        {"latent_shape": ["4"], "parameters": 14},
        {"latent_shape": "4", "parameters": 14},
        {"latent_shape": [4], "parameters": "14"},
        {"latent_shape": [4], "parameters": True},
        {"latent_shape": [4], "parameters": -1},
        {"latent_shape": [], "parameters": 14},
        {"latent_shape": [0], "parameters": 14},
        {"latent_shape": [4.0], "parameters": 14},
        {"latent_shape": None, "parameters": None},
        [4, 14],
        "14",
    ],
)
def test_an_entry_of_the_right_keys_and_wrong_types_is_built_again(package, entry):
    build = ImportPath("netpkg.nets.net:Net")
    first = facts(build)
    cache = model_facts.cache_file()
    stored = json.loads(cache.read_text())
    (key,) = stored
    cache.write_text(json.dumps({key: entry}))
    assert facts(build) == first  # built again, not an error
    assert built() == ["Net", "Net"]
    assert json.loads(cache.read_text()) == {key: first}  # and the entry mended


@pytest.mark.parametrize("build", ["import path", "class"])
def test_a_change_to_a_file_the_network_imports_builds_again(package, build):
    import netpkg.nets.net

    build = ImportPath("netpkg.nets.net:Net") if build == "import path" else netpkg.nets.net.Net
    assert facts(build)["parameters"] == 14
    (package / "common" / "sizes.py").write_text("LATENT = 4  # the same value, another text\n")
    facts(build)
    assert built() == ["Net", "Net"]  # a neighbour's source is in the key


def test_the_build_reference_is_in_the_key(package):
    assert facts(ImportPath("netpkg.nets.net:Net"))["parameters"] == 14
    assert facts(ImportPath("netpkg.nets.net:Wider"))["parameters"] == 100  # same spec name, same files
    assert built() == ["Net", "Wider"]


def test_a_lone_module_is_keyed_by_its_own_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "lone_net.py").write_text("class Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        build = ImportPath("lone_net:Net")
        before = model_facts._source_digest(build)
        (tmp_path / "lone_net.py").write_text("class Net:\n    size = 2\n")
        assert model_facts._source_digest(build) != before
    finally:
        sys.modules.pop("lone_net", None)
