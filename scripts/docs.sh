#!/usr/bin/env bash
# Serve the documentation site locally, rebuilt on every change (pass mkdocs serve options after it,
# e.g. --dev-addr 0.0.0.0:8001). Sets up .venv first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/mkdocs ] || bash scripts/setup.sh
exec .venv/bin/mkdocs serve --dev-addr 127.0.0.1:8001 "$@"
