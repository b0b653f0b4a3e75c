"""Shared test set-up: no downloads, a private dataset cache, and real MNIST where it lies beside
the checkout (../shared/datasets) or where ZOO_DATA_DIR points."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

# Nothing may download at test time, and a developer's own cache must not change the outcome.
os.environ["ZOO_OFFLINE"] = "1"
if not os.environ.get("ZOO_DATA_DIR") and (SHARED_DATASETS / "mnist").is_dir():
    os.environ["ZOO_DATA_DIR"] = str(SHARED_DATASETS)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
