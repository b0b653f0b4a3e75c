"""The built-in architectures and datasets, one module each, loaded through the "zoo" entry points."""
