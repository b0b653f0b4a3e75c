"""`zoo serve`, added to the CLI through the ``register_commands`` hook."""
