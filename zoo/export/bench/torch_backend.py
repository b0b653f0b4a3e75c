"""The PyTorch side of the worker protocol: eager mode under ``torch.inference_mode``, on the very
modules the exporter exports (zoo.export.parts)."""

import contextlib
import time

import numpy as np

from zoo.export.bench.settings import FLOOR_WIDTH, SEED
from zoo.export.bench.timing import time_calls

FLOOR_KEY = "__floor__"


class TorchBackend:
    """Part modules of the benchmark's run folders, by key, with this worker's thread budget."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only settable before any parallel work
            torch.set_num_interop_threads(1)
        self.torch = torch
        self.modules = {}  # key -> the part's module, in eval mode

    def context(self):
        return self.torch.inference_mode()

    def load(self, key, run, part) -> dict:
        from zoo.export.parts import make_parts
        from zoo.train.run_folder import load_run

        t0 = time.perf_counter_ns()
        loaded = load_run(run)
        (module,) = [p.module.eval() for p in make_parts(loaded.model, loaded.prior) if p.name == part]
        setup_ms = (time.perf_counter_ns() - t0) / 1e6
        self.modules[key] = module
        return {"setup_ms": setup_ms}

    def drop(self, key) -> None:
        self.modules.pop(key, None)

    def call(self, key, x):
        module, x = self.modules[key], self.torch.from_numpy(x)
        return lambda: module(x)

    def outputs(self, key, x) -> list:
        with self.torch.inference_mode():
            out = self.call(key, x)()
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    def floor(self):
        """One call of a tiny Linear: the fixed cost of a module call from Python."""
        if FLOOR_KEY not in self.modules:
            self.torch.manual_seed(SEED)
            self.modules[FLOOR_KEY] = self.torch.nn.Linear(FLOOR_WIDTH, FLOOR_WIDTH).eval()
        return self.call(FLOOR_KEY, np.zeros((1, FLOOR_WIDTH), np.float32))

    def matmul(self, n: int, calls: int, warmup: bool = True) -> list:
        gen = self.torch.Generator().manual_seed(SEED)
        a, b = (self.torch.randn(n, n, generator=gen) for _ in range(2))
        with self.torch.inference_mode():
            return time_calls(lambda: self.torch.matmul(a, b), warmup_calls=int(warmup), calls=calls)
