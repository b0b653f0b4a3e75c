"""Import paths from before the package was cut into folders by job, kept working for third-party
plugins and scripts: ``import zoo.hookspecs`` or ``from zoo.model import AutoEncoder`` load the
module's new home under its old name too (the same module object, so ``isinstance`` and monkeypatching
behave). New code imports the new paths; a DeprecationWarning (hidden by default) says which.

The table is the whole story of the move: old name -> new name.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "zoo.errors": "zoo.core.errors",
    "zoo.atomic": "zoo.core.atomic",
    "zoo.config": "zoo.core.config",
    "zoo.specs": "zoo.core.specs",
    "zoo.hookspecs": "zoo.core.hookspecs",
    "zoo.registry": "zoo.core.registry",
    "zoo.discovery": "zoo.core.discovery",
    "zoo.images": "zoo.core.image_grid",
    "zoo.model": "zoo.models.base",
    "zoo.variational": "zoo.models.variational",
    "zoo.layers": "zoo.models.layers",
    "zoo.model_facts": "zoo.models.facts",
    "zoo.distributed": "zoo.train.distributed",
    "zoo.run_folder": "zoo.train.run_folder",
    "zoo.pictures": "zoo.train.pictures",
    "zoo.likelihood": "zoo.evaluate.likelihood",
    "zoo.score_run": "zoo.evaluate.score",
    "zoo.scoring": "zoo.anomaly.scores",
    "zoo.normal_data": "zoo.anomaly.normal_data",
    "zoo.anomaly_metrics": "zoo.anomaly.metrics",
    "zoo.serve.app": "zoo.serve.http.app",
    "zoo.serve.connections": "zoo.serve.http.connections",
    "zoo.serve.hot_path": "zoo.serve.http.hot_path",
    "zoo.serve.middleware": "zoo.serve.http.middleware",
    "zoo.serve.run": "zoo.serve.http.run",
    "zoo.serve.metrics": "zoo.serve.http.metrics",
    "zoo.serve.inprocess": "zoo.serve.http.inprocess",
    "zoo.serve.batcher": "zoo.serve.inference.batcher",
    "zoo.serve.memory": "zoo.serve.inference.memory",
    "zoo.serve.models": "zoo.serve.inference.models",
}
# zoo.train and zoo.evaluate were modules and are now folders; zoo.placement was split in two
# (zoo.data.loading and zoo.train.devices). Those names cannot be aliased whole.


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass  # the target ran when it was imported


class MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        warnings.warn(f"{name} moved to {MOVED[name]}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(name, _Alias(MOVED[name]))


def install() -> None:
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
