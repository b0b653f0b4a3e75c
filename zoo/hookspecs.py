"""The plugin hooks. Each passes a ``register`` callback so the core can add keyword arguments
later without breaking plugins that do not take them."""

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_models(register):
    """Call ``register(ModelSpec(...))`` once per architecture the plugin provides."""


@hookspec
def register_datasets(register):
    """Call ``register(DatasetSpec(...))`` once per dataset the plugin provides."""
