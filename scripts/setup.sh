#!/usr/bin/env bash
# Create .venv and install autoencoder-zoo with its test extra. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned in pyproject.toml; pip takes it from a local wheel cache where there is one.
.venv/bin/python -m pip install --quiet -e '.[dev]'
