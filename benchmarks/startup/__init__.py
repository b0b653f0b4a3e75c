"""How long the `zoo` commands take to answer."""
