"""One-class anomaly detection with the zoo's own models and scores: the standard protocol (Ruff et
al. 2018, Deep SVDD; Golan and El-Yaniv 2018, GEOM). For each class of MNIST and Fashion-MNIST,
train on that class's training images only (`zoo train --labels C`), score the whole test split
with the model's own score (`zoo score`), and take the AUROC with class C as normal; the figure is
the mean over the classes. Then Fashion-MNIST -> MNIST: train on all of Fashion-MNIST, and score its
test images (normal) against MNIST's (the anomalies).

Nothing is tuned on the test split. Each model's settings are chosen among a few candidates
(ordinary `--set` settings) on held-out training data: a candidate trains on class C's training
images minus a held-out fifth (`score_holdout=0.2`), and is scored on that fifth (normal) against
training images of the other classes (anomalies); the candidate with the best mean validation
AUROC over the selection classes is the one the test protocol runs.

    ZOO_DATA_DIR=../shared/datasets python -m benchmarks.quality.one_class [--classes 0 1 ...] [--epochs N]
    python -m benchmarks.quality.one_class --quick --out /tmp/one-class
"""

import contextlib
import dataclasses
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import arguments, describe, publish, write_results
from benchmarks.quality.one_class_report import markdown, plot
from zoo.anomaly.metrics import auroc

DATASETS = ("mnist", "fashion-mnist")
# Per model: settings every run uses, the candidates selection chooses among, and the epochs (few:
# the whole protocol is 20 trainings per model on a CPU). Batches of 64 give short runs more steps;
# conv-vae trains on grey levels (binarize=none) because it is scored on them, with a KL warm-up
# of one epoch; the conv models are narrowed (hidden, channels) to fit a CPU's time.
MODELS = {
    # deep-ae: its defaults (784-64-32, each pixel standardized), a narrower and a wider code, a deeper
    # encoder; 10 epochs, its recipe's.
    "deep-ae": {
        "fixed": {},
        "candidates": [{"latent": "32"}, {"latent": "16"}, {"latent": "64"}, {"hidden": "256,64"}],
        "epochs": 10,
    },
    "conv-vae": {
        "fixed": {"batch_size": "64", "channels": "16", "hidden": "128", "binarize": "none", "kl_warmup_epochs": "1"},
        "candidates": [
            {"latent": "8", "score": "neg_elbo"},
            {"latent": "32", "score": "neg_elbo"},
            {"latent": "32", "score": "mse"},
        ],
        "epochs": 2,
    },
    "conv-ae": {
        "fixed": {"batch_size": "64", "hidden": "32"},
        "candidates": [{"latent": "1"}, {"latent": "4"}],
        "epochs": 2,
    },
}
VALIDATION_HOLDOUT = 0.2  # the fifth of class C's training images a candidate is validated on
VALIDATION_ANOMALIES = 2000  # training images of the other classes, drawn with a fixed seed
ANCHORS = [  # (method, MNIST mean AUROC, Fashion-MNIST mean AUROC, source)
    ("Deep SVDD", 94.8, 89.2, "Ruff et al. 2018; Fashion-MNIST as re-run in Ruff et al. 2020 (Deep SAD)"),
    ("GEOM (geometric transformations)", 98.0, 93.5, "Golan and El-Yaniv 2018"),
    ("plain conv autoencoder, reconstruction error", 90.0, 82.0, "reported second-hand (about)"),
    ("targets here", 96.0, 92.0, "issue 22"),
]


def train_run(out: Path, model: str, dataset: str, labels, sets: dict, epochs: int, subset: int = 0) -> Path:
    from zoo.train.loop import train

    with contextlib.redirect_stderr(io.StringIO()):  # the loop's progress lines
        return train(
            model,
            out,
            dataset=dataset,
            labels=labels,
            sets=dict(sets),
            epochs=epochs,
            device="cpu",
            seed=0,
            subset=subset,
        )


def split_scores(run: Path, split) -> np.ndarray:
    from zoo.anomaly.scores import score_split
    from zoo.train.run_folder import load_run

    return score_split(load_run(run).model, split)


class Data:
    """Each dataset's splits, loaded once (uint8, on the CPU)."""

    def __init__(self):
        self._splits = {}

    def __call__(self, name: str):
        from zoo.core.registry import get_dataset
        from zoo.data.loading import load_splits

        if name not in self._splits:
            self._splits[name] = load_splits(get_dataset(name), None, 0, "cpu")
        return self._splits[name]


def validation_auroc(run: Path, data: Data, dataset: str, normal: int) -> float:
    """The AUROC of the candidate's score on its held-out fifth of class ``normal`` (the rows the
    training loop held out, found the same way) against other classes' training images."""
    from zoo.anomaly.normal_data import hold_out, keep_labels

    splits = dataclasses.replace(data(dataset))
    _, held = hold_out(keep_labels(splits, [str(normal)], dataset), VALIDATION_HOLDOUT)
    full = data(dataset)
    others = torch.nonzero(full.train_labels != normal).flatten()
    pick = others[torch.from_numpy(np.random.default_rng(0).permutation(len(others))[:VALIDATION_ANOMALIES])]
    scores = np.concatenate([split_scores(run, held), split_scores(run, full.train[pick.sort().values])])
    return auroc(scores, np.r_[np.zeros(len(held), bool), np.ones(len(pick), bool)])


def select(tmp: Path, data: Data, model: str, dataset: str, classes, epochs: int, log) -> dict:
    """Each candidate's mean validation AUROC over ``classes``, and the one chosen."""
    spec = MODELS[model]
    tried = []
    for i, candidate in enumerate(spec["candidates"]):
        sets = {**spec["fixed"], **candidate, "score_holdout": str(VALIDATION_HOLDOUT)}
        started, values = time.perf_counter(), []
        for c in classes:
            run = train_run(tmp / f"select-{model}-{i}-{c}", model, dataset, [str(c)], sets, epochs)
            values.append(validation_auroc(run, data, dataset, c))
        tried.append(
            {
                "settings": candidate,
                "classes": list(classes),
                "validation_auroc": values,
                "mean": float(np.mean(values)),
                "seconds": time.perf_counter() - started,
            }
        )
        log(f"select {model} {candidate}: validation AUROC {np.mean(values):.4f} ({dataset} classes {list(classes)})")
    best = max(tried, key=lambda t: t["mean"])
    return {"dataset": dataset, "epochs": epochs, "candidates": tried, "chosen": best["settings"]}


def one_class(tmp: Path, data: Data, model: str, dataset: str, classes, sets: dict, epochs: int, log) -> dict:
    """Per class: train on it, score the whole test split, AUROC with it as normal."""
    test = data(dataset)
    per_class = {}
    for c in classes:
        started = time.perf_counter()
        run = train_run(tmp / f"{model}-{dataset}-{c}", model, dataset, [str(c)], sets, epochs)
        trained = time.perf_counter() - started
        value = auroc(split_scores(run, test.test), (test.test_labels != c).numpy())
        per_class[str(c)] = {"auroc": value, "train_seconds": trained, "seconds": time.perf_counter() - started}
        log(f"{model} {dataset} class {c}: AUROC {value:.4f} ({time.perf_counter() - started:.0f} s)")
    return {"per_class": per_class, "mean_auroc": float(np.mean([v["auroc"] for v in per_class.values()]))}


def fashion_to_mnist(tmp: Path, data: Data, model: str, sets: dict, epochs: int, subset: int, log) -> dict:
    """Train on Fashion-MNIST (every class), score its test images against MNIST's: the AUROC with
    Fashion-MNIST as normal (below 0.5: MNIST's digits score as more normal than the clothes)."""
    started = time.perf_counter()
    run = train_run(tmp / f"{model}-fashion", model, "fashion-mnist", None, sets, epochs, subset)
    normal, anomalies = split_scores(run, data("fashion-mnist").test), split_scores(run, data("mnist").test)
    value = auroc(np.r_[normal, anomalies], np.r_[np.zeros(len(normal), bool), np.ones(len(anomalies), bool)])
    log(f"{model} fashion-mnist -> mnist: AUROC {value:.4f}")
    return {
        "auroc": value,
        "train_subset": subset,
        "epochs": epochs,
        "seconds": time.perf_counter() - started,
        "mean_score_fashion": float(normal.mean()),
        "mean_score_mnist": float(anomalies.mean()),
    }


def run_model(tmp: Path, data: Data, model: str, args, log) -> dict:
    epochs = args.epochs or MODELS[model]["epochs"]
    started = time.perf_counter()
    selection = select(tmp, data, model, "mnist", args.select_classes, args.select_epochs or epochs, log)
    sets = {**MODELS[model]["fixed"], **selection["chosen"]}
    result = {
        "model": model,
        "settings": sets,
        "epochs": epochs,
        "selection": selection,
        "datasets": {d: one_class(tmp, data, model, d, args.classes, sets, epochs, log) for d in args.datasets},
    }
    if not args.no_fashion_to_mnist:
        result["fashion_to_mnist"] = fashion_to_mnist(tmp, data, model, sets, epochs, args.fashion_subset, log)
    result["seconds"] = time.perf_counter() - started
    return result


def parse_args():
    parser = arguments(__doc__, quick="one class per dataset, one epoch, selection on one class")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--classes", nargs="+", type=int, default=list(range(10)), help="the normal classes run")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: each model's, in MODELS)")
    parser.add_argument("--select-classes", nargs="+", type=int, default=[2, 8], help="MNIST classes selection uses")
    parser.add_argument("--select-epochs", type=int, default=1, help="epochs of a selection run (0: as the test runs)")
    parser.add_argument("--fashion-subset", type=int, default=0, help="Fashion -> MNIST: train on the first N images")
    parser.add_argument("--no-fashion-to-mnist", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    if args.quick:
        args.classes, args.select_classes, args.epochs, args.fashion_subset = args.classes[:1], [3], 1, 200
    return args


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    started, data, models = time.perf_counter(), Data(), []
    result = {
        "benchmark": "one_class",
        "machine": describe(args.threads),
        "quick": args.quick,
        "protocol": {
            "classes": args.classes,
            "datasets": args.datasets,
            "select_classes": args.select_classes,
            "select_epochs": args.select_epochs,
            "validation_holdout": VALIDATION_HOLDOUT,
            "validation_anomalies": VALIDATION_ANOMALIES,
            "fashion_subset": args.fashion_subset,
            "seed": 0,
        },
        "models_asked": args.models,
        "models": models,
        "anchors": [dict(zip(("method", "mnist", "fashion_mnist", "source"), a)) for a in ANCHORS],
    }
    with tempfile.TemporaryDirectory(prefix="one-class-") as tmp:
        for model in args.models:
            models.append(run_model(Path(tmp), data, model, args, log))
            result["seconds"] = time.perf_counter() - started
            if len(models) < len(args.models):  # after each model, so a run stopped part of the way keeps it
                json_path, _ = write_results("one_class", result, markdown(result), args.out)
                plot(result, json_path.with_suffix(".png"))
    publish(
        "one_class",
        result,
        markdown(result),
        args.out,
        plot=lambda path: plot(result, path),
        note=f"in {result['seconds']:.0f} s",
    )


if __name__ == "__main__":
    main()
