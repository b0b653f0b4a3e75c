"""The one training loop every architecture shares. It only talks to the ``AutoEncoder`` contract
(``stages``, ``optimizer_groups``, ``train_step``, whose default is ``model(x)`` and one optimizer
step), so it never knows which model it trains.

Data lives on the training device as one tensor per split; a batch is an index slice of it. Each
epoch ends with a test-split evaluation, a fit of the latent prior, and an atomic checkpoint, so a
run killed at any moment resumes from its last complete epoch with the same result.
"""

import contextlib
import math
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from zoo.core.config import make_config, split_overrides
from zoo.core.errors import ZooError, ZooUsageError, first_line
from zoo.core.registry import get_dataset, get_spec
from zoo.data import as_float
from zoo.data.loading import EVAL_BATCH, load_splits
from zoo.data.splits import spread_rows
from zoo.models.base import TrainStep
from zoo.train import run_folder
from zoo.train.data_defaults import decide
from zoo.train.data_defaults import describe as describe_choice
from zoo.train.devices import flush_denormals
from zoo.train.distributed import Distributed
from zoo.train.run_folder import BINARIZE_CHOICES, TrainConfig

PRIOR_FIT_SAMPLES = 10_000  # training latents used to fit a deterministic AE's prior each epoch


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    if cfg.schedule == "constant" or total <= 1:
        return 1.0
    progress = min(step / (total - 1), 1.0)
    return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def versions() -> dict:
    import zoo

    return {"zoo": zoo.__version__, "torch": torch.__version__, "python": platform.python_version()}


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


@torch.no_grad()
def evaluate_loss(model, data, autocast) -> dict:
    """Mean loss and metrics over a split, in eval mode, batch-size weighted."""
    model.eval()
    totals: dict = {}
    for i in range(0, len(data), EVAL_BATCH):
        x = as_float(data[i : i + EVAL_BATCH])
        with autocast():
            loss, metrics = model(x)
        for key, value in {"loss": loss, **metrics}.items():
            totals[key] = totals.get(key, 0.0) + float(value) * len(x)
    model.train()
    return {k: v / len(data) for k, v in totals.items()}


@torch.no_grad()
def fit_prior(model, prior, train) -> None:
    model.eval()
    # A seeded sample of the whole split, not its first rows: a folder sorted by class would fit
    # the prior (and every sample drawn from it) to one class.
    rows = torch.from_numpy(spread_rows(len(train), PRIOR_FIT_SAMPLES))
    z = torch.cat(
        [model.encode(as_float(train[rows[i : i + EVAL_BATCH]])).float() for i in range(0, len(rows), EVAL_BATCH)]
    )
    prior.fit(z)
    model.train()


def train(
    name, out=None, *, dataset=None, data_dir=None, data=None, sets=None, resume=None, progress=False, **overrides
):
    """Train model ``name`` and write a run folder; returns its path.

    ``data``: a ``zoo.data.by_path.DataRequest`` (``--data PATH``) instead of a registered dataset;
    ``overrides`` are TrainConfig fields (epochs, batch_size, lr, seed, device, subset, ...);
    ``sets`` are ``--set`` pairs for the model config or the training config.
    """
    loop = start(name, out, dataset, data_dir, sets, resume, overrides, data, progress)
    cfg, dist, steps = loop.cfg, loop.dist, loop.steps_per_epoch
    epoch, bar, total = loop.start_epoch, None, loop.total_epochs
    try:
        for epoch in range(loop.start_epoch, total):
            if bar is None and progress and dist.main:
                bar = progress_bar(total * steps, epoch * steps)
            if bar is not None:
                bar.set_description(f"epoch {epoch + 1}/{total}")
            train_loss, seconds, samples = run_epoch(loop, epoch, bar)
            end_epoch(loop, epoch, train_loss, seconds, samples, bar)
    except KeyboardInterrupt:
        dist.close()
        if bar is not None:
            bar.close()
        raise ZooError(
            f"interrupted in epoch {epoch + 1}; {loop.run_dir} holds the last complete epoch ({epoch}); "
            f"continue with: zoo train --resume {loop.run_dir}"
        ) from None
    if bar is not None:
        bar.close()
    loop.model.epochs_done = float(cfg.epochs)
    if dist.main:
        from zoo.train.pictures import draw_run

        draw_run(loop.run_dir, loop.model, loop.prior, loop.splits, loop.history)
        if loop.held_out is not None:
            from zoo.anomaly.scores import fit_threshold

            run_folder.write_threshold(
                loop.run_dir, fit_threshold(loop.model, loop.held_out, cfg.score_fpr, cfg.score_holdout)
            )
    dist.close()
    return loop.run_dir


@dataclass
class Loop:
    """What the epochs of one run share: made by ``start``, used by ``run_epoch`` and ``end_epoch``."""

    cfg: TrainConfig
    run_dir: Path
    dist: Distributed
    device: torch.device
    splits: object  # zoo.data.Splits, on the device
    model: torch.nn.Module
    prior: torch.nn.Module
    step_model: object  # what a step calls: the model, DDP-wrapped under torchrun, compiled with --compile
    optimizers: dict  # {group name: Adam}, from the model's optimizer_groups()
    schedulers: dict  # {group name: LambdaLR}, each over the steps of its group's stage
    stages: list  # [(stage, epochs)], from the model's stages(); the loop runs them in order
    autocast: object  # () -> the context a forward pass runs in
    steps_per_epoch: int
    start_epoch: int  # epochs already done (a resumed run's)
    history: list  # metrics.jsonl's records so far
    held_out: object = None  # normal training samples kept out of training, for the anomaly threshold

    @property
    def total_epochs(self) -> int:
        return sum(n for _, n in self.stages)

    def stage_lr(self, stage: str) -> float:
        """The learning rate of the stage's first optimizer group, for metrics.jsonl."""
        names = self.stage_groups(stage)
        return self.optimizers[names[0]].param_groups[0]["lr"] if names else 0.0

    def stage_groups(self, stage: str) -> list:
        """The names of the optimizer groups trained in ``stage``."""
        return [name for name, o in self.optimizers.items() if o.zoo_stage == stage]


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


def start(name, out, dataset, data_dir, sets, resume, overrides, data=None, progress=False) -> Loop:
    """Start a run, or resume one: settings, data, model, prior, optimizer and schedule; then the
    resumed run's state, or the new run's config.json. The seed is set before the data is loaded and
    the model built, so keep the order of these steps: it fixes which random numbers each one draws."""
    run_dir, name, dataset, sets, overrides, data = locate(name, out, dataset, sets, resume, overrides, data)
    spec, data_spec, model_config, cfg = resolve(name, dataset, overrides, sets, by_path=data is not None)
    flush_denormals()
    dist = Distributed(cfg.device)
    device = dist.device(cfg.device)
    torch.manual_seed(cfg.seed)
    explicit = set(sets or {}) | set(overrides) | set(data_spec.train if data_spec else {})
    splits, choice = load_data(data_spec, data_dir, data, model_config, cfg, explicit, device, progress and dist.main)
    data_name = data_spec.name if data_spec else Path(data.path).name
    splits, held_out = normal_part(splits, cfg, data_name)
    data_shape = tuple(splits.train.shape[1:])
    model = build_model(spec, model_config, data_shape).to(device)
    check_binarization(model, spec.name, cfg)
    if not resume and hasattr(model, "fit_input_normalization"):  # a resumed run's statistics are in its state
        rows = torch.from_numpy(spread_rows(len(splits.train), PRIOR_FIT_SAMPLES))
        model.fit_input_normalization(as_float(splits.train[rows]))
    prior = model.make_prior().to(device)
    steps_per_epoch = math.ceil(len(dist.shard(torch.arange(len(splits.train)))) / cfg.batch_size)
    budget = ""
    if cfg.min_steps and cfg.epochs * steps_per_epoch < cfg.min_steps:
        cfg.epochs = math.ceil(cfg.min_steps / steps_per_epoch)
        budget = f" (at least {cfg.min_steps:,} optimizer steps: --epochs or --set min_steps=N to change)"
    stages = stage_plan(model, cfg.epochs)  # after the step budget, which may add epochs
    optimizers, schedulers = make_optimizers(model, cfg, stages, steps_per_epoch)
    # bf16 autocast on CUDA (losses come back in fp32: models reduce in fp32 and we cast below).
    use_bf16 = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext

    start_epoch, history = 0, []
    if resume:
        start_epoch, history = restore(run_dir, device, model, prior, optimizers, schedulers)
    elif dist.main:
        run_folder.write_config(run_dir, new_run_config(spec, model_config, cfg, data_name, splits, model, choice))
    step_model = dist.wrap(model, device)
    if cfg.compile:
        step_model = torch.compile(step_model)

    held = f" ({len(held_out):,} more held out for the anomaly threshold)" if held_out is not None else ""
    labels = f", labels {' '.join(cfg.labels)}" if cfg.labels else ""
    later = "".join(f" + {n} in stage {name}" for name, n in stages[1:])
    dist.say(describe_choice(choice))
    dist.say(
        f"training {spec.name} on {data_name}{labels} ({splits.source}): {len(splits.train):,} train{held} / "
        f"{len(splits.test):,} test samples, device {device}, {cfg.epochs} epochs{budget}{later}, "
        f"batch {cfg.batch_size}, "
        f"lr {cfg.lr:g} -> {run_dir}"
    )
    return Loop(
        cfg,
        run_dir,
        dist,
        device,
        splits,
        model,
        prior,
        step_model,
        optimizers,
        schedulers,
        stages,
        autocast,
        steps_per_epoch,
        start_epoch,
        history,
        held_out,
    )


def stage_plan(model, epochs: int) -> list:
    """The model's stages with their epoch counts; one line for a plugin that declares them wrong."""
    stages = [(str(name), int(n)) for name, n in model.stages(epochs)]
    names = [name for name, _ in stages]
    if not stages or len(set(names)) != len(names) or any(n < 0 for _, n in stages):
        raise ZooError(f"{type(model).__name__}.stages() must name distinct stages with epochs >= 0, got {stages}")
    return stages


def stage_at(stages: list, epoch: int) -> str:
    """The stage that the run's ``epoch`` (0-based, over all stages) belongs to."""
    for name, n in stages:
        if epoch < n:
            return name
        epoch -= n
    return stages[-1][0]


def make_optimizers(model, cfg: TrainConfig, stages: list, steps_per_epoch: int):
    """One Adam and one learning-rate schedule per optimizer group the model declares; a group's
    schedule spans the steps of its own stage."""
    epochs_of = dict(stages)
    optimizers, schedulers = {}, {}
    for name, group in model.optimizer_groups().items():
        if group.stage not in epochs_of:
            raise ZooError(f"optimizer group {name!r} is in stage {group.stage!r}, which stages() does not name")
        decay = cfg.weight_decay if group.weight_decay is None else group.weight_decay
        optimizers[name] = torch.optim.Adam(group.params, lr=cfg.lr * group.lr_scale, weight_decay=decay)
        optimizers[name].zoo_stage = group.stage  # which schedulers a stage's epochs step
        total_steps = epochs_of[group.stage] * steps_per_epoch
        schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
            optimizers[name], lambda step, total=total_steps: lr_factor(step, total, cfg)
        )
    return optimizers, schedulers


def load_data(data_spec, data_dir, data, model_config, cfg: TrainConfig, explicit: set, device, progress):
    """The splits on the device, after the data has decided the likelihood, the binarization and the
    step budget (``zoo.train.data_defaults``) where ``explicit`` does not: (splits, the choice)."""
    choice = {}

    def choose(train):
        choice.update(decide(train, model_config, cfg, explicit, by_path=data is not None))
        return cfg.test_binarization_seed if cfg.binarize == "dynamic" else None

    splits = load_splits(
        data_spec,
        data_dir,
        cfg.subset,
        device,
        binarize_test_seed=choose,
        request=data,
        memory_budget=cfg.memory_budget,
        progress=progress,
    )
    return splits, choice


def new_run_config(spec, model_config, cfg: TrainConfig, data_name: str, splits, model, choice) -> run_folder.RunConfig:
    return run_folder.RunConfig(
        data_defaults=choice,
        model=spec.name,
        model_config=asdict(model_config),
        train_config=asdict(cfg),
        dataset=data_name,
        data_source=splits.source,
        data=splits.info,
        data_shape=list(splits.train.shape[1:]),
        latent_shape=list(model.latent_shape),
        seed=cfg.seed,
        versions=versions(),
    )


def normal_part(splits, cfg: TrainConfig, where: str):
    """(the splits restricted to ``cfg.labels``, minus the held-out samples; those samples or None)."""
    from zoo.anomaly.normal_data import hold_out, keep_labels

    if not 0 <= cfg.score_fpr < 1:
        raise ZooUsageError(f"score_fpr must lie in [0, 1), not {cfg.score_fpr}")
    if cfg.labels:
        cfg.labels = [str(label) for label in cfg.labels]
        splits = keep_labels(splits, cfg.labels, where)
    return hold_out(splits, cfg.score_holdout)


def build_model(spec, model_config, data_shape):
    """The model for data of ``data_shape``; a shape the architecture cannot take (its ValueError,
    which names its rule) is one line, before anything is written."""
    try:
        return spec.build(model_config, data_shape)
    except ValueError as exc:
        shape = "x".join(map(str, data_shape))
        raise ZooUsageError(f"{spec.name} cannot take data of shape {shape}: {first_line(exc)}") from None


def check_binarization(model, name: str, cfg: TrainConfig) -> None:
    """A likelihood of 8-bit pixels (``binarized_data`` False) trained on binarized pixels would
    learn a different distribution than the one it claims to measure."""
    if cfg.binarize == "dynamic" and not getattr(model, "binarized_data", True):
        raise ZooUsageError(
            f"{name}'s likelihood models 8-bit pixels, but the run binarizes them; add --set binarize=none"
        )


def restore(run_dir, device, model, prior, optimizers, schedulers):
    """Load a resumed run's loop state; returns the epochs it has done and their metrics records."""
    state = run_folder.load_state(run_dir / run_folder.STATE)
    model.load_state_dict(state["model"])
    prior.load_state_dict(state["prior"])
    saved_optimizers, saved_schedulers = state["optimizer"], state["scheduler"]
    if "param_groups" in saved_optimizers:  # a state file from before optimizer groups: one Adam
        saved_optimizers, saved_schedulers = {"model": saved_optimizers}, {"model": saved_schedulers}
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(saved_optimizers[name])
        schedulers[name].load_state_dict(saved_schedulers[name])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and "cuda_rng" in state:  # a VAE's noise on the GPU comes from here
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    start_epoch = state["epoch"]
    return start_epoch, run_folder.read_metrics(run_dir)[:start_epoch]


def run_epoch(loop: Loop, epoch: int, bar):
    """One pass over this rank's shard of the training split, one ``train_step`` per batch (by
    default one loss and one optimizer step). Returns the mean training loss, the seconds it took
    and the number of samples it saw."""
    cfg, device, model = loop.cfg, loop.device, loop.model
    model.stage = stage_at(loop.stages, epoch)
    step = TrainStep(loop.step_model, loop.autocast, loop.optimizers, cfg.grad_clip)
    schedulers = [loop.schedulers[name] for name in loop.stage_groups(model.stage)]
    # The permutation depends only on (seed, epoch): a resumed run shuffles identically.
    shuffle = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    order = loop.dist.shard(torch.randperm(len(loop.splits.train), generator=shuffle)).to(device)
    loss_sum = torch.zeros((), device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(0, len(order), cfg.batch_size):
        x = as_float(loop.splits.train[order[i : i + cfg.batch_size]])
        if cfg.binarize == "dynamic":  # drawn from the training RNG, whose state the checkpoint keeps
            x = torch.bernoulli(x)
        model.epochs_done = epoch + i / len(order)
        loss = model.train_step(x, step)
        if cfg.schedule != "constant":  # LambdaLR's step costs ~20 us: skip it when it is a no-op
            for scheduler in schedulers:
                scheduler.step()
        loss_sum.add_(loss.detach(), alpha=len(x))  # one in-place op: no sync, no temporary
        if bar is not None:
            bar.update(1)
            if bar.n % 50 == 0 and not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    train_loss = float(loss_sum) / len(order)
    if not math.isfinite(train_loss):
        raise ZooError(
            f"loss became {train_loss} in epoch {epoch + 1}; kept the checkpoint of epoch {epoch} in "
            f"{loop.run_dir}; try a lower --lr or --set grad_clip=1"
        )
    return train_loss, seconds, len(order)


def end_epoch(loop: Loop, epoch: int, train_loss: float, seconds: float, samples: int, bar) -> None:
    """The test loss and the prior fit, the epoch's metrics record and progress line, the checkpoint."""
    cfg, device = loop.cfg, loop.device
    # Evaluation and the prior fit draw no numbers from the training RNG stream.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed + 1)
        test = evaluate_loss(loop.model, loop.splits.test, loop.autocast)
        fit_prior(loop.model, loop.prior, loop.splits.train)
    record = {
        "epoch": epoch + 1,
        **({"stage": loop.model.stage} if len(loop.stages) > 1 else {}),
        "epoch_seconds": seconds,
        "samples_per_second": samples * loop.dist.world / seconds,
        "train_loss": train_loss,
        "test_loss": test.pop("loss"),
        "lr": loop.stage_lr(loop.model.stage),
        **{f"test_{k}": v for k, v in test.items()},
    }
    loop.history.append(record)
    # One line per epoch, except for runs of many tiny epochs: about ten lines then.
    total = loop.total_epochs
    if seconds > 1 or (epoch + 1) % max(1, total // 10) == 0 or epoch + 1 == total:
        line = (
            f"epoch {epoch + 1}/{total}  train {train_loss:.4f}  test {record['test_loss']:.4f}  "
            f"{record['samples_per_second']:,.0f} samples/s  {seconds:.2f}s"
        )
        (bar.write if bar is not None else loop.dist.say)(line)
    if loop.dist.main:
        save_checkpoint(loop.run_dir, loop.model, loop.prior, loop.optimizers, loop.schedulers, epoch + 1, loop.history)


def save_checkpoint(run_dir, model, prior, optimizers, schedulers, epoch, history) -> None:
    device = next(model.parameters()).device
    # metrics first, then the loop state (the commit point of an epoch), then the user-facing weights.
    run_folder.write_metrics(run_dir, history)
    run_folder.save_state(
        run_dir / run_folder.STATE,
        {
            "epoch": epoch,
            "model": model.state_dict(),
            "prior": prior.state_dict(),
            "optimizer": {name: o.state_dict() for name, o in optimizers.items()},
            "scheduler": {name: s.state_dict() for name, s in schedulers.items()},
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
        },
    )
    run_folder.save_weights(run_dir / run_folder.WEIGHTS, model, prior)


def progress_bar(total: int, done: int):
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI); the epoch lines still print.
    return tqdm(total=total, initial=done, unit="step", leave=False, dynamic_ncols=True, disable=None)
