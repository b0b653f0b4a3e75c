"""What a plugin registers. Plain dataclasses: no torch needed to describe a model."""

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the CLI name, e.g. "vae"
    config: type  # a dataclass type; its field defaults are the hyper-parameters
    build: Callable[[Any, tuple], Any]  # build(config, data_shape) -> zoo.AutoEncoder
    default_dataset: str
    summary: str  # one line for `zoo list`
    # Training defaults (epochs, batch_size, lr, ...) used unless the command line overrides them.
    train: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    data_shape: tuple  # shape of one sample, known without loading any data
    # load(data_dir: str | None) -> zoo.data.Splits (uint8 images or float tensors)
    load: Callable[..., Any]
    summary: str
    # where(data_dir) -> str: where the files were found, or raises ZooError saying where it looked.
    # None for datasets that are generated rather than read from disk.
    locate: Callable[..., str] | None = None
