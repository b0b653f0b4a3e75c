"""What a run is made of before anything is loaded: its folder, the model, the dataset (or data by
path) and their settings, layered defaults first and the command line last; for a resumed run, the
ones saved in its folder."""

from dataclasses import replace
from pathlib import Path

from zoo.core.config import make_config, split_overrides
from zoo.core.errors import ZooError, ZooUsageError
from zoo.core.registry import get_dataset, get_spec
from zoo.train import run_folder
from zoo.train.run_folder import BINARIZE_CHOICES, TrainConfig


def locate(name, out, dataset, sets, resume, overrides, data=None):
    """The run folder, and the model, dataset (or data by path) and settings to resolve: the
    caller's for a new run; for a resumed one, those saved in it, where the command line may still
    change the epoch count (to train longer) or the device."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not resume:
        run_dir = Path(out or f"runs/{name}")
        if (run_dir / run_folder.CONFIG).exists():
            raise ZooError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
        return run_dir, name, dataset, sets, overrides, data
    run_dir = Path(resume)
    saved = run_folder.read_config(run_dir)
    if not (run_dir / run_folder.STATE).is_file():
        raise ZooError(f"{run_dir} has no {run_folder.STATE} to resume from; start a new run instead")
    # The saved settings win over the model's defaults.
    sets = {**saved.model_config, **(sets or {})}
    overrides = {**{k: v for k, v in saved.train_config.items() if k != "device"}, **overrides}
    if saved.data:
        from zoo.data.by_path import DataRequest

        data = replace(DataRequest.from_record(saved.data["asked"]), expect_fingerprint=saved.data.get("fingerprint"))
    return run_dir, saved.model, saved.dataset, sets, overrides, data


def resolve(name, dataset, train_overrides: dict, sets: dict, by_path: bool = False):
    """Model spec, dataset spec, model config and training config: defaults, then the model's
    ``ModelSpec.train``, then the dataset's ``DatasetSpec.train`` (mnist-binary's binarize), then the
    command line. Data given by path has no dataset spec (None)."""
    spec = get_spec(name)
    data_spec = None if by_path else get_dataset(dataset or spec.default_dataset)
    model_sets, train_sets = split_overrides(sets or {}, spec.config, TrainConfig)
    model_config = make_config(spec.config, model_sets)
    dataset_train = data_spec.train if data_spec else {}
    train_config = make_config(
        TrainConfig, {**spec.train, **dataset_train, **train_sets, **train_overrides}, what="training"
    )
    if train_config.binarize not in BINARIZE_CHOICES:
        raise ZooUsageError(f"binarize must be one of {', '.join(BINARIZE_CHOICES)}, not {train_config.binarize!r}")
    if train_config.schedule not in ("cosine", "constant"):
        raise ZooUsageError(f"schedule must be 'cosine' or 'constant', not {train_config.schedule!r}")
    for key in ("epochs", "batch_size"):
        if getattr(train_config, key) < 1:
            raise ZooUsageError(f"{key} must be at least 1")
    return spec, data_spec, model_config, train_config
