"""The plugin hooks. ``register_models`` and ``register_datasets`` pass a ``register`` callback so
the core can add keyword arguments later without breaking plugins that do not take them;
``register_commands`` passes the click group itself, as simonw/llm does."""

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_models(register):
    """Call ``register(ModelSpec(...))`` once per architecture the plugin provides."""


@hookspec
def register_datasets(register):
    """Call ``register(DatasetSpec(...))`` once per dataset the plugin provides."""


@hookspec
def register_commands(cli):
    """Add commands to the ``zoo`` click group: ``@cli.command()`` or ``cli.add_command(...)``."""
