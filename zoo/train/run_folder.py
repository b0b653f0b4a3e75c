"""The run folder, the one module that writes and reads it: config.json (``RunConfig``), weights
as safetensors, loop state without pickle, and loading a run back into a model.

Every file is written to a temporary name in the same folder and renamed into place, so a run
killed at any moment leaves each file either old or new, never half-written.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from zoo.core.atomic import atomic_write, atomic_write_text, write_json  # noqa: F401 (re-exported)
from zoo.core.errors import ZooError, first_line

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "state.safetensors"
METRICS = "metrics.jsonl"
THRESHOLD = "threshold.json"  # the anomaly threshold set at the end of training (zoo.anomaly.scores)
PRIOR_PREFIX = "prior."  # the latent prior's buffers live in the weights file under this prefix


def write_metrics(run_dir, history: list) -> Path:
    """metrics.jsonl: one JSON object per finished epoch, in order."""
    return atomic_write_text(Path(run_dir) / METRICS, "".join(json.dumps(record) + "\n" for record in history))


def read_metrics(run_dir) -> list:
    """The records of metrics.jsonl, one per finished epoch ([] when there is none yet)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _save_tensors(path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _load_tensors(path, what: str):
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path} is missing; the run folder is incomplete ({what})")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})
    except Exception as exc:
        raise ZooError(f"{path} is corrupt ({type(exc).__name__}: {first_line(exc, 120)})") from None


def save_weights(path, model, prior) -> None:
    tensors = dict(model.state_dict())
    tensors.update({PRIOR_PREFIX + k: v for k, v in prior.state_dict().items()})
    _save_tensors(path, tensors, {"format": "pt"})


def load_weights(path, model, prior) -> None:
    tensors, _ = _load_tensors(path, "weights")
    prior_state = {k[len(PRIOR_PREFIX) :]: v for k, v in tensors.items() if k.startswith(PRIOR_PREFIX)}
    model_state = {k: v for k, v in tensors.items() if not k.startswith(PRIOR_PREFIX)}
    try:
        model.load_state_dict(model_state, strict=True)
        prior.load_state_dict(prior_state, strict=True)
    except RuntimeError as exc:
        raise ZooError(f"{path} does not fit the model in config.json: {first_line(exc, 160)}") from None


def write_threshold(run_dir, record: dict) -> Path:
    """threshold.json: the score's definition, the threshold, the false-positive rate it was set at
    and the held-out samples it was set on (``zoo.anomaly.scores.fit_threshold`` makes the record)."""
    return write_json(Path(run_dir) / THRESHOLD, record)


def read_threshold(run_dir) -> dict | None:
    """The run's threshold record, or None for a run without one (made before thresholds, or
    without held-out samples)."""
    path = Path(run_dir) / THRESHOLD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record.get("threshold"), (int, float)) or not isinstance(record.get("definition"), str):
            raise ValueError("needs a numeric threshold and a definition")
    except (ValueError, AttributeError) as exc:
        raise ZooError(f"{path} is corrupt ({exc}); train the run again or delete the file") from None
    return record


# Loop state (optimizer moments, RNG states, epoch counters) is a nested structure of tensors and
# plain values. Tensors go into safetensors; the structure, with tensor leaves replaced by their
# keys, goes into the file's JSON metadata, so resuming never unpickles anything.


def _flatten(obj, tensors: dict, prefix: str):
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        # JSON object keys are strings: remember int keys (Adam's per-parameter state) as such.
        return {"__dict__": [[k, _flatten(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    return obj


def _unflatten(obj, tensors: dict):
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(path, state: dict) -> None:
    tensors: dict = {}
    skeleton = _flatten(state, tensors, "s")
    _save_tensors(path, tensors, {"skeleton": json.dumps(skeleton)})


def load_state(path) -> dict:
    tensors, metadata = _load_tensors(path, "training state")
    try:
        return _unflatten(json.loads(metadata["skeleton"]), tensors)
    except (KeyError, ValueError, TypeError) as exc:
        raise ZooError(f"{path} is corrupt (bad state layout: {exc})") from None


# The one fixed Bernoulli draw of the test split that binarized-data numbers are measured on; every
# run records it (TrainConfig.test_binarization_seed) and `zoo eval --nll` reports it.
TEST_BINARIZATION_SEED = 0
BINARIZE_CHOICES = ("none", "dynamic")


@dataclass
class TrainConfig:
    """The training loop's settings, kept in config.json's train_config."""

    epochs: int = 10  # passes over the training split
    batch_size: int = 128  # samples per optimizer step (per process under torchrun)
    lr: float = 1e-3  # Adam's peak learning rate
    weight_decay: float = 0.0  # Adam's L2 penalty
    schedule: str = "cosine"  # "cosine": decay to lr * final_lr_ratio by the last step; "constant"
    final_lr_ratio: float = 0.05  # where the cosine schedule ends, as a fraction of lr
    grad_clip: float = 0.0  # clip the global gradient norm to this; 0 turns clipping off
    seed: int = 0  # model init, shuffling and noise all derive from it
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda"
    compile: bool = False  # torch.compile the training step
    subset: int = 0  # use only the first N samples of each split (0: all); for smoke tests
    # "dynamic": every training batch is redrawn as Bernoulli(pixel intensity) from the training RNG,
    # and the test split is binarized once with test_binarization_seed; "none": grey levels as they are.
    binarize: str = "none"
    test_binarization_seed: int = TEST_BINARIZATION_SEED  # the protocol's fixed draw; recorded
    # Bytes a split may take in RAM; a larger one is memory-mapped and batches are gathered from the
    # file (zoo.data.splits). 0: half of the memory available when the run starts.
    memory_budget: int = 0
    # Train on these labels' samples only (--labels; names as `zoo score` lists them); []: all of them.
    labels: list = field(default_factory=list)
    # The anomaly threshold (zoo.anomaly.scores): this fraction of the training split is held out from
    # training, and the threshold is put where a fraction score_fpr of its scores lie above it.
    score_holdout: float = 0.05
    score_fpr: float = 0.01
    # Train at least this many optimizer steps (more epochs for a small dataset); 0: just `epochs`.
    # Data given by path without --epochs gets zoo.train.data_defaults.DATA_MIN_STEPS.
    min_steps: int = 0


@dataclass
class RunConfig:
    """What config.json holds: enough to rebuild the model (with the weights) and to retrain it."""

    model: str  # the registered model name
    model_config: dict  # the model's config dataclass, as a dict
    dataset: str  # the registered dataset name ("" for a run made without data)
    data_shape: list  # one sample's shape
    latent_shape: list  # one code's shape
    train_config: dict = field(default_factory=dict)  # a TrainConfig, as a dict
    data_source: str = ""  # the folder the data came from
    # Data given by path (--data): its path, fingerprint, preprocessing (asked and applied), split,
    # label names and the files left out (zoo.data.by_path); {} for a registered dataset.
    data: dict = field(default_factory=dict)
    seed: int = 0
    versions: dict = field(default_factory=dict)  # zoo, torch and python versions that wrote it
    note: str = ""  # e.g. why a run was made without training
    # What the data decided (zoo.train.data_defaults): its kind, the likelihood, the binarization, why.
    data_defaults: dict = field(default_factory=dict)

    def training(self) -> TrainConfig:
        """train_config as a TrainConfig. A setting the file lacks takes TrainConfig's default (an
        older zoo's run, or one made by ``write_run`` without training), so a setting added to
        TrainConfig must default to what runs did before it; one the file holds that TrainConfig no
        longer has is ignored. The values are the file's, unconverted."""
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in self.train_config.items() if k in known})


def write_config(run_dir, config: RunConfig) -> Path:
    return write_json(Path(run_dir) / CONFIG, dataclasses.asdict(config))


def read_config(run_dir) -> RunConfig:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise ZooError(f"{run_dir} is not a run folder (no such directory)")
    if not path.is_file():
        raise ZooError(f"{path} is missing; is {run_dir} a folder written by `zoo train`?")
    try:
        raw = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(RunConfig)}
        config = RunConfig(**{k: v for k, v in raw.items() if k in known})
        if not isinstance(config.model_config, dict) or not all(
            isinstance(s, list) and all(isinstance(d, int) and d > 0 for d in s)
            for s in (config.data_shape, config.latent_shape)
        ):
            raise ValueError("model_config must be an object, data_shape and latent_shape lists of positive ints")
    except (ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None
    return config


def write_run(run_dir, name: str, model, prior, dataset: str = "", note: str = "") -> Path:
    """A run folder for a model held in memory (config.json + model.safetensors), laid out as
    `zoo train` writes one: for benchmarks and tests that need an exportable run without training."""
    write_config(
        run_dir,
        RunConfig(
            model=name,
            model_config=dataclasses.asdict(model.config),
            dataset=dataset,
            data_shape=list(model.data_shape),
            latent_shape=list(model.latent_shape),
            note=note,
        ),
    )
    save_weights(Path(run_dir) / WEIGHTS, model, prior)
    return Path(run_dir)


def write_untrained_run(
    run_dir,
    name: str,
    model=None,
    seed: int = 0,
    dataset: str | None = None,
    note: str = "seeded initial weights, not trained",
) -> Path:
    """A run folder of a model that was never trained, for benchmarks and tests that need exportable
    files (speed and export do not depend on training): ``model``, or model ``name`` built with
    ``seed``, and a prior fitted to its codes of uniform random data. ``dataset`` defaults to the
    registered model's default dataset."""
    import torch

    from zoo.core.registry import create_model, get_spec

    if model is None:
        torch.manual_seed(seed)
        model = create_model(name)
    model.eval()
    prior = model.make_prior()
    noise = torch.rand(512, *model.data_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        prior.fit(model.encode(noise))
    if dataset is None:
        dataset = get_spec(name).default_dataset
    return write_run(run_dir, name, model, prior, dataset=dataset, note=note)


@dataclass
class Run:
    path: Path
    config: RunConfig  # the run's config.json
    model: object  # zoo.AutoEncoder, in eval mode
    prior: object  # zoo.models.base.GaussianPrior


def _check_shapes(path: Path, model, prior) -> None:
    """Compare the tensor shapes a config would build (on the meta device: nothing allocated) with
    those in the weights file's header (no tensor read), so an absurd config.json is refused before
    anything is built for real."""
    from safetensors import safe_open

    if not path.is_file():
        raise ZooError(f"{path} is missing; the run folder is incomplete (weights)")
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:
        raise ZooError(f"{path} is corrupt ({type(exc).__name__}: {first_line(exc, 120)})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected.update({PRIOR_PREFIX + k: tuple(v.shape) for k, v in prior.state_dict().items()})
    for key in sorted(expected.keys() | stored.keys()):
        if expected.get(key) != stored.get(key):
            want = list(expected[key]) if key in expected else "nothing"
            have = list(stored[key]) if key in stored else "nothing"
            raise ZooError(
                f"{path} does not fit the model in config.json: {key} is {have} in the weights, "
                f"the config asks for {want}; the run folder's files do not belong together"
            )


def load_run(run_dir, device="cpu") -> Run:
    """Rebuild a trained model from a run folder: config.json + model.safetensors."""
    import torch

    from zoo.core.config import make_config
    from zoo.core.registry import get_spec

    config = read_config(run_dir)
    spec = get_spec(config.model)
    model_config = make_config(spec.config, config.model_config)
    weights = Path(run_dir) / WEIGHTS
    try:
        with torch.device("meta"):
            shell = spec.build(model_config, tuple(config.data_shape))
            _check_shapes(weights, shell, shell.make_prior())
        model = spec.build(model_config, tuple(config.data_shape))
        prior = model.make_prior()
    except (MemoryError, RuntimeError, ValueError, OverflowError) as exc:
        raise ZooError(
            f"{Path(run_dir) / CONFIG}: cannot build {config.model} from its settings "
            f"({type(exc).__name__}: {first_line(exc, 120)})"
        ) from None
    load_weights(weights, model, prior)
    model.to(device).eval()
    prior.to(device)
    return Run(Path(run_dir), config, model, prior)
