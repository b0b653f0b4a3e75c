"""Shared test set-up: no downloads, a private dataset cache, and small generated MNIST-shaped
datasets, so the whole suite runs on a fresh clone. The real MNIST (ZOO_DATA_DIR, or
../shared/datasets beside the checkout) is kept aside for the tests that check a quality number on
it; they find it with ``helpers.real_data_dir()``, which skips only where neither is there and fails
where one is but the zoo's lookup finds nothing in it."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from tiny_data import write_tiny_idx

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

# Nothing may download at test time, and a developer's own cache must not change the outcome.
os.environ["ZOO_OFFLINE"] = "1"
# ZOO_REAL_DATA_DIR="" runs the suite as a machine without MNIST would.
if "ZOO_REAL_DATA_DIR" not in os.environ:
    shared = str(SHARED_DATASETS) if SHARED_DATASETS.is_dir() else ""
    os.environ["ZOO_REAL_DATA_DIR"] = os.environ.get("ZOO_DATA_DIR") or shared
tiny = Path(tempfile.mkdtemp(prefix="zoo-test-data-"))
atexit.register(shutil.rmtree, tiny, ignore_errors=True)
write_tiny_idx(tiny / "mnist", seed=0)
write_tiny_idx(tiny / "fashion-mnist", seed=1)
os.environ["ZOO_DATA_DIR"] = str(tiny)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
