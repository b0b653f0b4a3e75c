"""Plugin discovery: every entry point in the "zoo" group, built-ins included, each load guarded.

A plugin that fails to import is recorded (``zoo plugins`` shows the error) and the rest of the zoo
keeps working; ``ZOO_STRICT_PLUGINS=1`` turns such failures into errors.
"""

import importlib.metadata
import os
from dataclasses import dataclass, field

import pluggy

from zoo.core import hookspecs
from zoo.core.errors import ZooError


@dataclass
class PluginInfo:
    name: str  # entry-point name, or the name an object was registered under
    distribution: str  # the pip distribution that ships it ("" when registered in code)
    version: str
    models: list = field(default_factory=list)
    datasets: list = field(default_factory=list)
    commands: list = field(default_factory=list)
    error: str = ""


def strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "") not in ("", "0")


def plugin_failed(info: PluginInfo, exc: BaseException, what: str) -> None:
    info.error = f"{what}: {type(exc).__name__}: {exc}"
    if strict():
        raise ZooError(f"plugin {info.name!r} failed ({info.error}); unset ZOO_STRICT_PLUGINS to skip it")


def make_plugin_manager() -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    pm = pluggy.PluginManager("zoo")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for ep in sorted(importlib.metadata.entry_points(group="zoo"), key=lambda e: e.name):
        dist = ep.dist
        info = PluginInfo(ep.name, dist.name if dist else "", dist.version if dist else "")
        if ep.name in infos:  # the same entry point seen twice (e.g. two copies on sys.path)
            continue
        infos[ep.name] = info
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not take the zoo down
            plugin_failed(info, exc, "import failed")
    return pm, infos
