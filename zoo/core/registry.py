"""The registry: what the loaded plugins registered, and the public lookup API."""

import difflib
import fnmatch
from dataclasses import dataclass

from zoo.core import discovery
from zoo.core.errors import ZooError, ZooUsageError
from zoo.core.specs import DatasetSpec, ImportPath, ModelSpec


@dataclass
class Entry:
    spec: object  # ModelSpec or DatasetSpec
    plugin: str  # name of the plugin that registered it


class Registry:
    def __init__(self, pm, infos):
        self.infos = infos
        self.models: dict[str, Entry] = {}
        self.datasets: dict[str, Entry] = {}
        self.command_owners: dict[str, str] = {}  # command name -> plugin, once add_commands ran
        self._collect(pm, "register_models", ModelSpec, self.models, "models")
        self._collect(pm, "register_datasets", DatasetSpec, self.datasets, "datasets")

    def _collect(self, pm, hook_name, spec_type, table, info_field):
        # Each plugin's hook is called on its own, so one that raises is skipped alone and we know
        # which plugin provided each name.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = self.infos.setdefault(impl.plugin_name, discovery.PluginInfo(impl.plugin_name, "", ""))
            found: list = []
            try:
                impl.function(**{arg: found.append for arg in impl.argnames})
                for spec in found:
                    if not isinstance(spec, spec_type):
                        raise TypeError(f"{hook_name} expects {spec_type.__name__}, got {type(spec).__name__}")
            except Exception as exc:
                discovery.plugin_failed(info, exc, f"{hook_name} failed")
                continue
            for spec in found:
                if spec.name in table:
                    raise ZooError(
                        f"{info_field[:-1]} name {spec.name!r} is registered by both plugin "
                        f"{table[spec.name].plugin!r} and plugin {info.name!r}; uninstall one of them"
                    )
                table[spec.name] = Entry(spec, info.name)
                getattr(info, info_field).append(spec.name)

    def check_model_modules(self) -> None:
        """Report a plugin whose model names a network module that is not there. The module is
        found, not run, so this needs no torch; an import error inside it shows when the model is
        built, naming the module."""
        for name, entry in self.models.items():
            build = entry.spec.build
            info = self.infos[entry.plugin]
            if isinstance(build, ImportPath) and not info.error and build.find() is None:
                info.error = f"model {name!r} is built by {build.path}, but there is no module {build.module!r}"

    def add_commands(self, cli) -> None:
        """Let every plugin add its commands to the click group ``cli``. A plugin whose hook raises
        is reported like a broken model plugin, and keeps none of the commands it half-added."""
        for impl in plugin_manager().hook.register_commands.get_hookimpls():
            info = self.infos.setdefault(impl.plugin_name, discovery.PluginInfo(impl.plugin_name, "", ""))
            before = dict(cli.commands)
            try:
                impl.function(cli=cli)
            except Exception as exc:
                cli.commands.clear()
                cli.commands.update(before)
                discovery.plugin_failed(info, exc, "register_commands failed")
                continue
            replaced = sorted(n for n, command in before.items() if cli.commands.get(n) is not command)
            if replaced:
                cli.commands.clear()
                cli.commands.update(before)
                owner = self.command_owners.get(replaced[0], "the core")
                raise ZooError(
                    f"command {replaced[0]!r} is registered by both "
                    f"{owner if owner == 'the core' else f'plugin {owner!r}'} "
                    f"and plugin {info.name!r}; uninstall one of them"
                )
            for name in sorted(cli.commands.keys() - before.keys()):
                info.commands.append(name)
                self.command_owners[name] = info.name


_pm = None
_infos = None
_registry = None


def plugin_manager():
    global _pm, _infos
    if _pm is None:
        _pm, _infos = discovery.make_plugin_manager()
    return _pm


def current() -> Registry:
    """The registry, built on first use and cached until a plugin is (un)registered in code."""
    global _registry
    if _registry is None:
        pm = plugin_manager()
        _registry = Registry(pm, dict(_infos))
    return _registry


def register_plugin(plugin, name: str) -> None:
    """Register a plugin object in code (tests, notebooks); entry points are found automatically."""
    global _registry
    plugin_manager().register(plugin, name=name)
    _registry = None


def unregister_plugin(name: str) -> None:
    global _registry
    plugin_manager().unregister(name=name)
    _registry = None


def unknown(kind: str, name: str, known) -> ZooUsageError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    close += [k for k in known if name and name in k and k not in close]
    hint = f"did you mean {', '.join(repr(c) for c in close[:3])}?" if close else f"known: {', '.join(known)}"
    return ZooUsageError(f"unknown {kind} {name!r}; {hint}")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard, e.g. ``list_models("*ae")``."""
    return sorted(n for n in current().models if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    models = current().models
    if name not in models:
        raise unknown("model", name, models)
    return models[name].spec


def list_datasets(pattern: str = "*") -> list[str]:
    return sorted(n for n in current().datasets if fnmatch.fnmatch(n, pattern))


def get_dataset(name: str) -> DatasetSpec:
    datasets = current().datasets
    if name not in datasets:
        raise unknown("dataset", name, datasets)
    return datasets[name].spec


def create_model(name: str, data_shape=None, **overrides):
    """Build a registered model with its default config, changed by ``overrides``."""
    from zoo.core.config import make_config

    spec = get_spec(name)
    config = make_config(spec.config, overrides)
    if data_shape is None:
        data_shape = get_dataset(spec.default_dataset).data_shape
    return spec.build(config, tuple(data_shape))
