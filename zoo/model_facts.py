"""What `zoo info` says about a model that only building it can tell: its latent shape and parameter
count. Building needs torch, a second or two to import, so each answer is kept in the user cache
(model-facts.json), keyed by everything that could change it: the model, its settings, the data
shape, the plugin's version, and the source of the zoo core and of the package holding the network.
The first `zoo info` of a setting builds the model; the next ones answer without torch."""

import hashlib
import json
import sys
from pathlib import Path

from .atomic import write_json
from .config import to_dict
from .data import cache_home
from .specs import ImportPath

MAX_ENTRIES = 256  # a few KB: the oldest answers go first


def cache_file() -> Path:
    return cache_home() / "model-facts.json"


def _network_file(build) -> Path | None:
    """The network's source file, found without importing it when the plugin gave an import path."""
    if isinstance(build, ImportPath):
        found = build.find()
        origin = found.origin if found else None
    else:
        origin = getattr(sys.modules.get(getattr(build, "__module__", "")), "__file__", None)
    return Path(origin) if origin else None


def _source_digest(build) -> str:
    """sha256 over the zoo core's .py files and those beside the network's module (a network may
    build on its neighbours, as the denoiser does on the deep autoencoder)."""
    folders = {Path(__file__).parent}
    network = _network_file(build)
    if network is not None:
        folders.add(network.parent)
    digest = hashlib.sha256()
    for path in sorted(p for folder in folders for p in folder.glob("*.py")):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _key(spec, config, data_shape, plugin_version: str) -> str:
    from . import __version__

    what = [spec.name, to_dict(config), list(data_shape), plugin_version, __version__, _source_digest(spec.build)]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


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
    if isinstance(cached, dict) and {"latent_shape", "parameters"} <= cached.keys():
        return cached
    model = spec.build(config, tuple(data_shape))
    facts = {"latent_shape": list(model.latent_shape), "parameters": sum(p.numel() for p in model.parameters())}
    _store(key, facts)
    return facts
