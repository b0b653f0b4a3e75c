"""What a run trains when: the stages a model declares (``AutoEncoder.stages``), one Adam per
optimizer group it declares (``AutoEncoder.optimizer_groups``), and each group's learning-rate
schedule over the steps of its own stage (cosine to ``final_lr_ratio`` of the peak, or constant)."""

import math

import torch

from zoo.core.errors import ZooError
from zoo.train.run_folder import TrainConfig


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    if cfg.schedule == "constant" or total <= 1:
        return 1.0
    progress = min(step / (total - 1), 1.0)
    return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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
