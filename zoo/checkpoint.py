"""Run folders: atomic writes, weights as safetensors, loop state without pickle, and loading a
run back into a model.

Every file is written to a temporary name in the same folder and renamed into place, so a run
killed at any moment leaves each file either old or new, never half-written.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write, atomic_write_text, write_json  # noqa: F401 (re-exported)
from .errors import ZooError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "state.safetensors"
METRICS = "metrics.jsonl"
PRIOR_PREFIX = "prior."  # the latent prior's buffers live in the weights file under this prefix


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
        raise ZooError(f"{path} is corrupt ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None


def save_weights(path, model, prior) -> None:
    tensors = dict(model.state_dict())
    tensors.update({PRIOR_PREFIX + k: v for k, v in prior.state_dict().items()})
    _save_tensors(path, tensors, {"format": "pt"})


def load_weights(path, model, prior) -> None:
    tensors, _ = _load_tensors(path, "weights")
    prior_state = {k[len(PRIOR_PREFIX):]: v for k, v in tensors.items() if k.startswith(PRIOR_PREFIX)}
    model_state = {k: v for k, v in tensors.items() if not k.startswith(PRIOR_PREFIX)}
    try:
        model.load_state_dict(model_state, strict=True)
        prior.load_state_dict(prior_state, strict=True)
    except RuntimeError as exc:
        raise ZooError(f"{path} does not fit the model in config.json: {str(exc).splitlines()[0][:160]}") from None


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


def read_config(run_dir) -> dict:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise ZooError(f"{run_dir} is not a run folder (no such directory)")
    if not path.is_file():
        raise ZooError(f"{path} is missing; is {run_dir} a folder written by `zoo train`?")
    try:
        config = json.loads(path.read_text())
        config["model"], config["model_config"], config["data_shape"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None
    return config


@dataclass
class Run:
    path: Path
    config: dict  # the run's config.json
    model: object  # zoo.AutoEncoder, in eval mode
    prior: object  # zoo.model.GaussianPrior


def load_run(run_dir, device="cpu") -> Run:
    """Rebuild a trained model from a run folder: config.json + model.safetensors."""
    from .config import make_config
    from .registry import get_spec

    config = read_config(run_dir)
    spec = get_spec(config["model"])
    model = spec.build(make_config(spec.config, config["model_config"]), tuple(config["data_shape"]))
    prior = model.make_prior()
    load_weights(Path(run_dir) / WEIGHTS, model, prior)
    model.to(device).eval()
    prior.to(device)
    return Run(Path(run_dir), config, model, prior)
