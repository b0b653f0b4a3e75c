#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Tests that need MNIST use ZOO_DATA_DIR, or the shared
# dataset folder beside the checkout, and skip with a reason where neither has it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The serve page test drives headless Chromium: install Debian's package where it is missing (it
# skips, saying why, when no chromium can be found).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } \
        >/dev/null 2>&1 || echo "note: could not install chromium; the page test will be skipped" >&2
fi
# Triton beside zoo serve, so that the conformance tests run against both: built where its sources
# can be had (about a minute the first time, a second or two after). Where they cannot, one line says
# why and those tests skip; in CI (CI=true), where they can, a failed build fails the run.
if triton_from=$(bash scripts/triton.sh available); then
    mkdir -p .triton
    if ! bash scripts/triton.sh build >.triton/build.log 2>&1; then
        why=$(grep '^Error: ' .triton/build.log | tail -1 | sed 's/^Error: //')
        if [ "${CI:-}" = "true" ]; then
            echo "Error: Triton did not build from $triton_from: ${why:-see .triton/build.log}" >&2
            exit 1
        fi
        echo "note: Triton did not build from $triton_from (${why:-see .triton/build.log}); the tests against it will be skipped" >&2
    fi
else
    echo "note: $triton_from; the tests against Triton will be skipped" >&2
fi
if [ -z "${ZOO_DATA_DIR:-}" ] && [ -d ../shared/datasets/mnist ]; then
    export ZOO_DATA_DIR=$(cd ../shared/datasets && pwd)
fi
# The tree's rules first: the import contracts (pyproject.toml's [tool.importlinter]) and ruff.
.venv/bin/lint-imports --no-cache >/dev/null || { .venv/bin/lint-imports --no-cache; exit 1; }
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
exec .venv/bin/python -m pytest -q "$@"
