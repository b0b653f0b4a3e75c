"""Import paths from before the package was cut into folders keep working for plugins written
against them: each old name is the new module itself (zoo/core/moved.py), so a class imported
either way is the same class."""

import importlib
import subprocess
import sys

import pytest

from zoo.core.moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_is_the_new_module(old, new):
    with pytest.warns(DeprecationWarning, match=new) if old not in sys.modules else _nothing():
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_a_plugin_written_against_the_old_paths_still_builds_a_model():
    source = (
        "from zoo.hookspecs import hookimpl\n"
        "from zoo.model import AutoEncoder\n"
        "from zoo.variational import VariationalAutoEncoder\n"
        "import zoo, zoo.models.base\n"
        "assert hookimpl is zoo.hookimpl and AutoEncoder is zoo.models.base.AutoEncoder\n"
        "assert issubclass(VariationalAutoEncoder, zoo.AutoEncoder)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_an_unknown_old_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("zoo.no_such_module")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
