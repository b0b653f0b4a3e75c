#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Tests that need MNIST use ZOO_DATA_DIR, or the shared
# dataset folder beside the checkout, and skip with a reason where neither has it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${ZOO_DATA_DIR:-}" ] && [ -d ../shared/datasets/mnist ]; then
    export ZOO_DATA_DIR=$(cd ../shared/datasets && pwd)
fi
exec .venv/bin/python -m pytest -q "$@"
