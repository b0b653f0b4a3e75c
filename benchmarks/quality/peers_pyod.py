"""Run inside the PyOD virtual environment by benchmarks.quality.peers (no zoo here): fit PyOD's
AutoEncoder and VAE with their defaults on each one-class training set, score the test images.

    python peers_pyod.py WORK THREADS AutoEncoder,VAE

WORK/<dataset>-<class>.npz holds x_train and x_test; the scores go to WORK/pyod.json.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    # PyOD and its torch exist only in the PyOD environment; importing this module elsewhere (the
    # benchmarks package's import check) must not need them.
    import pyod
    import torch
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.vae import VAE

    work = Path(sys.argv[1])
    torch.set_num_threads(int(sys.argv[2]))
    models = [m for m in (("AutoEncoder", AutoEncoder), ("VAE", VAE)) if m[0] in sys.argv[3].split(",")]
    results = {"pyod": pyod.__version__, "torch": torch.__version__, "runs": []}
    for path in sorted(work.glob("*.npz")):
        arrays = np.load(path)
        train, test = (
            arrays["x_train"].reshape(len(arrays["x_train"]), -1),
            arrays["x_test"].reshape(len(arrays["x_test"]), -1),
        )
        for name, make in models:
            torch.manual_seed(0)
            np.random.seed(0)
            start = time.perf_counter()
            detector = make(verbose=0)  # the defaults, seed included
            detector.fit(train.astype(np.float32) / 255)
            fitted = time.perf_counter() - start
            scores = detector.decision_function(test.astype(np.float32) / 255)
            results["runs"].append({"case": path.stem, "model": name, "seconds": fitted, "scores": scores.tolist()})
            print(f"{path.stem} {name} {fitted:.1f}s", file=sys.stderr, flush=True)
    (work / "pyod.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main()
