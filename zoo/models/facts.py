"""What `zoo info` says about a model that only building it can tell: its latent shape and parameter
count. Building needs torch, a second or two to import, so each answer is kept in the user cache
(model-facts.json), keyed by everything that could change it: the model, the build reference it
names, its settings, the data shape, the plugin's version, and the source of the zoo core and of
the network's module with everything it could import beside it (its whole top-level package). The
first `zoo info` of a setting builds the model; the next ones answer without torch. An entry that
is not a well-formed answer (an older or damaged cache) is built again, never an error."""

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

from zoo.core.atomic import write_json
from zoo.core.config import to_dict
from zoo.core.specs import ImportPath
from zoo.data import cache_home

MAX_ENTRIES = 256  # a few KB: the oldest answers go first


def cache_file() -> Path:
    return cache_home() / "model-facts.json"


def _module_name(build) -> str:
    return build.module if isinstance(build, ImportPath) else getattr(build, "__module__", "") or ""


def _build_reference(build) -> str:
    """What the spec names: "package.module:Name", or the class's module and qualified name."""
    if isinstance(build, ImportPath):
        return build.path
    return f"{_module_name(build)}:{getattr(build, '__qualname__', repr(build))}"


def _locations(module_name: str) -> list:
    """The folders of the module's packages, outermost first, else the module's own file: what it
    may import without leaving its distribution. Found without running the module (finding it
    imports its parent packages)."""
    if not module_name:
        return []
    try:
        found = sys.modules.get(module_name) or importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return []
    parts = module_name.split(".")
    folders = []
    for depth in range(1, len(parts)):
        package = sys.modules.get(".".join(parts[:depth]))
        folders += [Path(folder) for folder in getattr(package, "__path__", [])]
    if folders:
        return folders
    origin = getattr(found, "__file__", None) or getattr(found, "origin", None)
    return [Path(origin)] if origin and Path(origin).is_file() else []


def _source_digest(build) -> str:
    """sha256 over the .py files of the zoo core and of the network module's packages (a network
    may build on its neighbours, as the denoiser does on the deep autoencoder, and on shared layers)."""
    files = set(Path(__file__).parents[1].rglob("*.py"))  # the whole zoo package
    for location in _locations(_module_name(build)):
        files.update(location.rglob("*.py") if location.is_dir() else [location])
    digest = hashlib.sha256()
    for path in sorted(files):
        try:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            digest.update(str(path).encode() + b"\0unreadable\0")
    return digest.hexdigest()


def _key(spec, config, data_shape, plugin_version: str) -> str:
    from zoo import __version__

    what = [
        spec.name,
        _build_reference(spec.build),
        to_dict(config),
        list(data_shape),
        plugin_version,
        __version__,
        _source_digest(spec.build),
    ]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _well_formed(facts) -> bool:
    """An answer as model_facts gives it: a latent shape of positive ints, a count of parameters."""

    def whole(value, low):
        return type(value) is int and value >= low  # bool is an int subclass, and no answer

    return (
        isinstance(facts, dict)
        and isinstance(facts.get("latent_shape"), list)
        and len(facts["latent_shape"]) > 0
        and all(whole(d, 1) for d in facts["latent_shape"])
        and whole(facts.get("parameters"), 0)
    )


def _read_cache() -> dict:
    try:
        cached = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: it is only a cache
    return cached if isinstance(cached, dict) else {}


def _store(key: str, facts: dict) -> None:
    cached = _read_cache()
    cached.pop(key, None)
    cached[key] = facts
    try:
        write_json(cache_file(), dict(list(cached.items())[-MAX_ENTRIES:]))
    except OSError:
        pass  # a read-only home: the next `zoo info` builds the model again


def model_facts(spec, config, data_shape: tuple, plugin_version: str = "") -> dict:
    """{"latent_shape": [...], "parameters": N} of ``spec`` built with ``config`` for ``data_shape``."""
    key = _key(spec, config, data_shape, plugin_version)
    cached = _read_cache().get(key)
    if _well_formed(cached):
        return {"latent_shape": cached["latent_shape"], "parameters": cached["parameters"]}
    model = spec.build(config, tuple(data_shape))
    facts = {"latent_shape": list(model.latent_shape), "parameters": sum(p.numel() for p in model.parameters())}
    _store(key, facts)
    return facts
