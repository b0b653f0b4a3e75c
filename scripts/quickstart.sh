#!/usr/bin/env bash
# Set up, then train the VAE on real data, evaluate it, export it to ONNX and draw samples with
# onnxruntime alone. MNIST where it can be found (ZOO_DATA_DIR, ~/.cache/zoo, /usr/share/datasets)
# or downloaded; otherwise Fashion-MNIST from Debian's dataset-fashion-mnist package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
zoo() { .venv/bin/zoo "$@"; }

# A checkout beside a shared dataset folder (as on the project's CI machines) uses it.
if [ -z "${ZOO_DATA_DIR:-}" ] && [ -d ../shared/datasets/mnist ]; then
    export ZOO_DATA_DIR=$(cd ../shared/datasets && pwd)
fi

dataset=mnist
if ! .venv/bin/python -c "from zoo.data import locate; locate('mnist')" 2>/dev/null; then
    echo "MNIST is neither on this machine nor downloadable; using Fashion-MNIST from Debian's dataset-fashion-mnist."
    if ! .venv/bin/python -c "from zoo.data import locate; locate('fashion-mnist', download=False)" 2>/dev/null; then
        if command -v apt-get >/dev/null; then
            SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
            $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist
        fi
    fi
    dataset=fashion-mnist
fi
echo "dataset: $dataset"

RUN=${RUN:-runs/vae}
if [ -f "$RUN/config.json" ]; then
    RUN="$RUN-$(date +%Y%m%d-%H%M%S)"  # never overwrite an earlier run
fi
zoo train vae --dataset "$dataset" --out "$RUN"
zoo eval "$RUN"
zoo export "$RUN"
zoo sample "$RUN/generator.onnx" -n 64 --seed 0 -o "$RUN/generated.png"
echo "done: pictures in $RUN (recon.png, samples.png, latent.png, curves.png, generated.png), ONNX files beside them"
