"""torchrun's data parallelism for the training loop: which rank this process is, its device, the
model wrapped for DistributedDataParallel, this rank's shard of an epoch's permutation, and that
only rank 0 speaks and writes."""

import os
import sys

import torch

from zoo.train.devices import pick_device


class Distributed:
    """torchrun's data parallelism: every rank trains on its shard; only rank 0 writes files."""

    def __init__(self, device_name: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            use_cuda = device_name != "cpu" and torch.cuda.is_available()
            if use_cuda:
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group("nccl" if use_cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        device = pick_device(name)
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.world > 1 else device

    def wrap(self, model, device):
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        # Equal shards, so every rank takes the same number of steps and DDP's all-reduces pair up.
        usable = len(perm) // self.world * self.world
        return perm[:usable][self.rank :: self.world]

    def say(self, text: str) -> None:
        """A progress line on stderr, from rank 0 alone."""
        if self.main:
            print(text, file=sys.stderr)

    def close(self):
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
