#!/usr/bin/env bash
# The GPU checks of conv-vae and the shared loop, as one prepared script for a machine with one
# NVIDIA GPU (H100 or H200). Run from the checkout's root, with MNIST copied into the checkout first
# (data/ is git-ignored) so it travels with the working tree:
#
#   mkdir -p data && cp -r ../shared/datasets/mnist data/
#   OUT=/some/folder bash benchmarks/gpu_check.sh [STAGE]
#
# STAGE is one of (each fits in 10 minutes; `all` runs them in order):
#   train  the conv-vae GPU recipe, its epoch count fitted to TRAIN_SECONDS (default 480) by a
#          one-epoch timing run first
#   nll    zoo eval --nll on the trained run: k = 5000, the whole binarized test split, on the GPU
#   loop   python -m benchmarks.training.train_throughput --device cuda (seed loop against the zoo's
#          loop), and the VAE's MNIST epoch time
#   serve  python -m benchmarks.serving.serve_workers on the machine's CPU cores: `zoo serve
#          --workers N` for N = 1, 2, 4 and 8, each worker count on cores of its own and 4
#          load-client processes on the next four (about 3 minutes; needs no GPU and no MNIST)
#   vamp   the families' full-length runs, each fitted to FAMILY_SECONDS (default 420) by
#   hvae   a one-epoch timing run, then its NLL at k = 1000 on the whole binarized test split:
#   vqvae  vamp (the paper's recipe, KL warm-up 100 epochs; pythae's reproduced NLL 85.79), hvae
#          (Burda et al.'s IWAE k = 50, batch 20 on the GPU raised to 100; 82.90), vq-vae (its two
#          stages, exported, 64 samples from generator.onnx)
#   all    train, nll, loop, serve
# Everything lands under $OUT (card name, logs, run folder, JSON); benchmark result files are also
# copied to $OUT/results/ for benchmarks/results/.
set -euo pipefail

STAGE="${1:-all}"
OUT="${OUT:?set OUT to the folder the results go to}"
export ZOO_DATA_DIR="${ZOO_DATA_DIR:-data}"
TRAIN_SECONDS="${TRAIN_SECONDS:-480}"
MAX_EPOCHS="${MAX_EPOCHS:-300}"
PY="${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
RUN="$OUT/conv-vae-gpu"
# The GPU recipe: a wider, deeper conv-vae trained on the k = 5 importance-weighted bound with a
# longer KL warm-up; the same dynamically binarized MNIST as the CPU recipe.
RECIPE=(--set channels=64 --set blocks=2 --set latent=64 --set iw_samples=5 --set kl_warmup_epochs=10
        --batch-size 256 --lr 2e-3 --device cuda)

mkdir -p "$OUT/results"
if ! "$PY" -c "import zoo" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1
fi
if [ "$STAGE" != serve ] && [ ! -d "$ZOO_DATA_DIR/mnist" ]; then
    echo "no MNIST in $ZOO_DATA_DIR/mnist: copy it into the checkout first (see the top of this script)" >&2
    exit 1
fi

card() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/card.txt" 2>&1 || true
    "$PY" - >"$OUT/device.json" <<'EOF'
import json, platform, torch
print(json.dumps({"card": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                  "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}))
EOF
    cat "$OUT/card.txt" "$OUT/device.json"
}

# The median epoch_seconds of a run folder's metrics.jsonl, skipping the first epoch (warm-up).
epoch_seconds() {
    "$PY" - "$1" <<'EOF'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1] + "/metrics.jsonl") if line.strip()]
times = [r["epoch_seconds"] for r in records[1:]] or [records[0]["epoch_seconds"]]
print(f"{statistics.median(times):.4f}")
EOF
}

stage_train() {
    rm -rf "$OUT/conv-vae-timing" "$RUN"
    "$PY" -m zoo train conv-vae "${RECIPE[@]}" --epochs 2 --out "$OUT/conv-vae-timing" 2>&1 | tee "$OUT/timing.log"
    local per_epoch epochs
    per_epoch=$(epoch_seconds "$OUT/conv-vae-timing")
    # The per-epoch test evaluation and checkpoint add to epoch_seconds: allow 15% for them.
    epochs=$("$PY" -c "print(max(1, min($MAX_EPOCHS, int($TRAIN_SECONDS / ($per_epoch * 1.15)))))")
    echo "conv-vae GPU recipe: $per_epoch s per epoch -> $epochs epochs in about $TRAIN_SECONDS s" | tee "$OUT/plan.txt"
    local start=$SECONDS
    "$PY" -m zoo train conv-vae "${RECIPE[@]}" --epochs "$epochs" --out "$RUN" 2>&1 | tee "$OUT/train.log"
    echo "{\"epochs\": $epochs, \"wall_seconds\": $((SECONDS - start))}" | tee "$OUT/train_wall.json"
}

stage_nll() {
    "$PY" -m zoo eval "$RUN" --nll --iw-samples 5000 --device cuda --json | tee "$OUT/conv_vae_nll_k5000.json"
}

stage_loop() {
    "$PY" -m benchmarks.training.train_throughput --device cuda --epochs 3 2>&1 | tee "$OUT/train_throughput.log"
    rm -rf "$OUT/vae-epoch"
    "$PY" -m zoo train vae --epochs 3 --device cuda --out "$OUT/vae-epoch" 2>&1 | tee "$OUT/vae_epoch.log"
    echo "{\"vae_mnist_epoch_seconds_median\": $(epoch_seconds "$OUT/vae-epoch")}" | tee "$OUT/vae_epoch.json"
    cp benchmarks/results/train_throughput-* "$OUT/results/" 2>/dev/null || true
}

FAMILY_SECONDS="${FAMILY_SECONDS:-420}"

# Train a family for as many epochs as FAMILY_SECONDS allows (timed on one epoch first), then
# evaluate it: family NAME EXTRA_STAGES_FACTOR ZOO-TRAIN-OPTIONS...
family() {
    local name=$1 factor=$2
    shift 2
    rm -rf "$OUT/$name-timing" "$OUT/$name"
    "$PY" -m zoo train "$name" "$@" --epochs 1 --device cuda --out "$OUT/$name-timing" 2>&1 | tee "$OUT/$name-timing.log"
    local per_epoch epochs
    per_epoch=$(epoch_seconds "$OUT/$name-timing")
    epochs=$("$PY" -c "print(max(1, min($MAX_EPOCHS, int($FAMILY_SECONDS / ($per_epoch * 1.15 * $factor)))))")
    echo "$name: $per_epoch s per epoch -> $epochs epochs" | tee "$OUT/$name-plan.txt"
    "$PY" -m zoo train "$name" "$@" --epochs "$epochs" --device cuda --out "$OUT/$name" 2>&1 | tee "$OUT/$name-train.log"
}

stage_vamp() {
    family vamp 1 --set kl_warmup_epochs=100
    "$PY" -m zoo eval "$OUT/vamp" --nll --iw-samples 1000 --device cuda --json | tee "$OUT/vamp_nll_k1000.json"
}

stage_hvae() {
    family hvae 1 --set iw_samples=50 --batch-size 100
    "$PY" -m zoo eval "$OUT/hvae" --nll --iw-samples 1000 --device cuda --json | tee "$OUT/hvae_nll_k1000.json"
}

stage_vqvae() {
    family vq-vae 2  # two stages of as many epochs each
    "$PY" -m zoo export "$OUT/vq-vae" 2>&1 | tee "$OUT/vq-vae-export.log"
    "$PY" -m zoo sample "$OUT/vq-vae/generator.onnx" -n 64 --seed 0 -o "$OUT/vq-vae-samples.png"
}

stage_serve() {
    nproc | tee "$OUT/serve_cores.txt"
    "$PY" -m benchmarks.serving.serve_workers --workers 1 2 4 8 --clients 4 --out "$OUT/results" 2>&1 | tee "$OUT/serve_workers.log"
}

card
case "$STAGE" in
    train) stage_train ;;
    nll) stage_nll ;;
    loop) stage_loop ;;
    serve) stage_serve ;;
    vamp) stage_vamp ;;
    hvae) stage_hvae ;;
    vqvae) stage_vqvae ;;
    all) stage_train; stage_nll; stage_loop; stage_serve ;;
    *) echo "unknown stage $STAGE: use train, nll, loop, serve, vamp, hvae, vqvae or all" >&2; exit 2 ;;
esac
