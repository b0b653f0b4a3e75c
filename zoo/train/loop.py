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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from zoo.core.errors import ZooError, ZooUsageError, first_line
from zoo.data import as_float
from zoo.data.loading import EVAL_BATCH, load_splits
from zoo.data.splits import spread_rows
from zoo.models.base import TrainStep
from zoo.train import run_folder
from zoo.train.checkpoint import restore, save_checkpoint
from zoo.train.data_defaults import decide
from zoo.train.data_defaults import describe as describe_choice
from zoo.train.devices import flush_denormals
from zoo.train.distributed import Distributed
from zoo.train.run_folder import TrainConfig
from zoo.train.schedule import make_optimizers, stage_at, stage_plan
from zoo.train.settings import locate, resolve

PRIOR_FIT_SAMPLES = 10_000  # training latents used to fit a deterministic AE's prior each epoch


def versions() -> dict:
    import zoo

    return {"zoo": zoo.__version__, "torch": torch.__version__, "python": platform.python_version()}


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


def progress_bar(total: int, done: int):
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI); the epoch lines still print.
    return tqdm(total=total, initial=done, unit="step", leave=False, dynamic_ncols=True, disable=None)
