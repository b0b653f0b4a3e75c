"""What a plugin registers. Plain dataclasses: no torch needed to describe a model."""

import importlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo.core.errors import ZooError, first_line

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class ImportPath:
    """A callable named "package.module:Name", imported on its first call. A plugin names its model
    class this way so that listing and describing models (`zoo list`, `zoo info`) never imports
    torch: the network's module loads only when a model is built."""

    path: str

    def __post_init__(self):
        if not _IMPORT_PATH.match(self.path):
            raise ValueError(f"{self.path!r} is not an import path of the form 'package.module:Name'")

    @property
    def module(self) -> str:
        return self.path.partition(":")[0]

    def load(self):
        module_name, _, attribute = self.path.partition(":")
        try:
            target = importlib.import_module(module_name)
            for name in attribute.split("."):
                target = getattr(target, name)
        except Exception as exc:  # a broken plugin module: say which one, in one line
            raise ZooError(
                f"cannot import {self.path} ({type(exc).__name__}: {first_line(exc)}); "
                "`zoo plugins` lists the plugins and their errors"
            ) from None
        return target

    def find(self):
        """The module's import spec (its ``origin`` is the file), found without running the module
        (its parent packages are imported); None when there is no such module."""
        try:
            return importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None

    def __call__(self, *args, **kwargs):
        return self.load()(*args, **kwargs)


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the CLI name, e.g. "vae"
    config: type  # a dataclass type; its field defaults are the hyper-parameters
    # build(config, data_shape) -> zoo.AutoEncoder: the model class itself, or its import path
    # "package.module:Class" (recommended), which keeps torch out of `zoo list` and `zoo info`.
    build: Callable[[Any, tuple], Any] | str
    default_dataset: str
    summary: str  # one line for `zoo list`
    # Training defaults (epochs, batch_size, lr, ...) used unless the command line overrides them.
    train: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.build, str):
            object.__setattr__(self, "build", ImportPath(self.build))


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
