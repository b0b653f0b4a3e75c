"""The loop's state at the end of an epoch, through the run folder's files (``zoo.train.run_folder``
owns their format): saved atomically, metrics first and the loop state as the commit point, and
restored for ``--resume``, optimizers, schedules and random state included."""

import torch

from zoo.train import run_folder


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
