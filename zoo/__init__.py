"""autoencoder-zoo: a plugin-based zoo of autoencoders with exportable inference.

Importing this package stays light (no torch), so that ``zoo.export.runtime`` works in an
environment that only has numpy and onnxruntime. Torch-backed names load on first use.
"""

from zoo.core import moved
from zoo.core.errors import ZooError, ZooUsageError
from zoo.core.hookspecs import hookimpl, hookspec
from zoo.core.registry import create_model, get_dataset, get_spec, list_datasets, list_models
from zoo.core.specs import DatasetSpec, ModelSpec

moved.install()  # the import paths from before the folders (zoo.hookspecs, zoo.model, ...)

__version__ = "0.1.0"

__all__ = [
    "AutoEncoder",
    "DatasetSpec",
    "ModelSpec",
    "OptimizerGroup",
    "TrainStep",
    "ZooError",
    "ZooUsageError",
    "create_model",
    "get_dataset",
    "get_spec",
    "hookimpl",
    "hookspec",
    "list_datasets",
    "list_models",
]


def __getattr__(name):
    # AutoEncoder subclasses nn.Module, so it (and the training contract beside it) is only
    # imported when someone asks for it.
    if name in ("AutoEncoder", "OptimizerGroup", "TrainStep"):
        from zoo.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
