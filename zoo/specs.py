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
    summary: str
    # load(data_dir: str | None) -> zoo.data.Splits, for data that is not four IDX files (generated
    # points, another format). None: the core finds and reads the dataset's IDX files.
    load: Callable[..., Any] | None = None
    generated: bool = False  # made in memory, so there is nothing to find on disk
    # For IDX datasets: subfolders of a searched folder that may hold the files (e.g. torchvision's
    # "MNIST/raw"), download(folder) as the last resort, and a remedy for the not-found message.
    layouts: tuple = ()
    download: Callable[[Any], None] | None = None
    hint: str = ""
    # Training settings this dataset implies, over the model's defaults (e.g. {"binarize": "dynamic"}).
    train: dict = field(default_factory=dict)
