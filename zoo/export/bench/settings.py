"""What a run measures and for how long, and the constants both sides of the worker protocol share.

No torch and no onnxruntime here: the onnxruntime worker imports this module.
"""

import dataclasses

from zoo.export.bench.timing import Timing

STEM = "inference"  # results are <out>/inference-<machine>-<date>.{json,md,png}
RUNTIMES = ("onnxruntime", "torch")
SEED = 0
FLOOR_WIDTH = 16  # the floor graphs' feature width: an Identity for onnxruntime, Linear(16, 16) for torch

# onnxruntime's defaults as this benchmark starts them: full graph optimisation, sequential
# execution, no spinning (so an idle pool never takes a core from anything), denormals kept.
DEFAULT_OPTIONS = {
    "graph_optimization_level": "ORT_ENABLE_ALL",
    "execution_mode": "ORT_SEQUENTIAL",
    "denormal_as_zero": False,
    "allow_spinning": False,
}
# The knobs tuning tries, in order; each step starts from the winner of the previous ones.
KNOBS = (
    ("graph_optimization_level", ("ORT_ENABLE_ALL", "ORT_ENABLE_LAYOUT", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_BASIC")),
    ("execution_mode", ("ORT_SEQUENTIAL", "ORT_PARALLEL")),
    ("denormal_as_zero", (False, True)),
    ("allow_spinning", (False, True)),  # only tried with more than one thread
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long to measure. The full run takes a few minutes on 2 cores; --quick well under one."""

    batches: tuple = (1, 8, 64, 256, 1024)
    threads: tuple = ()  # () means 1 and all cores
    # This machine's speed drifts between ~1x and ~1.5x every few tens of milliseconds (other virtual
    # machines on the host), so the runtimes take turns in many short rounds and both sample the slow
    # and the fast stretches alike; then the disturbed rounds are dropped (timing.quiet_stats).
    cell_s: float = 0.12  # timed seconds per cell and entry (PyTorch, each onnxruntime finalist), all rounds
    rounds: int = 16  # interleaved rounds per cell, at most ...
    passes: int = 16  # ... spread over this many passes over all the cells (seconds apart)
    min_rounds: int = 3  # ... and at least, where calls are slow (a 1.5 s call is timed 3 times)
    min_calls: int = 1  # per round
    quiet_keep: float = 1.2  # rounds slower than this times the cell's best round count as disturbed
    max_calls: int = 20_000
    warmup_calls: int = 3  # before a cell's first timed block, plus warmup_s; never counted
    warmup_s: float = 0.02
    ceiling_n: int = 2048  # the reference matmul is n x n @ n x n, fp32
    ceiling_calls: int = 1  # per pass and library
    floor_s: float = 0.03  # timed seconds of the fixed-cost graphs per pass
    tune_enabled: bool = True  # choose onnxruntime's session options from measurement (tuning.py)
    tune_batches: tuple = (1, 256)  # where the session-option knobs are compared
    tune_rounds: int = 4
    tune_target_s: float = 0.01
    tune_margin: float = 0.05  # a setting must be this much faster than the incumbent to be kept

    @classmethod
    def quick(cls, **changes):
        """A smoke run for CI: every code path, two batch sizes, tiny samples. Its numbers are not for
        reading."""
        quick = dict(
            batches=(1, 64),
            cell_s=0.006,
            rounds=2,
            passes=1,
            min_rounds=2,
            min_calls=2,
            max_calls=1000,
            warmup_calls=1,
            warmup_s=0.001,
            ceiling_n=512,
            ceiling_calls=2,
            floor_s=0.005,
            tune_batches=(1,),
            tune_rounds=1,
            tune_target_s=0.002,
        )
        return cls(**{**quick, **changes})

    def timing(self, target_s: float, previous_ns: float | None = None) -> Timing:
        """How to time one block of calls. ``previous_ns``: the p50 of this cell's previous round,
        which sets the number of calls directly and shortens the warm-up (arenas and caches are warm)."""
        timing = Timing(
            target_s=target_s,
            min_calls=self.min_calls,
            max_calls=self.max_calls,
            warmup_calls=self.warmup_calls,
            warmup_s=self.warmup_s,
        )
        if previous_ns:
            slow = previous_ns > 0.05e9  # such a call is its own warm-up
            calls = min(max(target_s * 1e9 / previous_ns, self.min_calls), self.max_calls)
            timing = dataclasses.replace(
                timing, warmup_calls=0 if slow else 1, warmup_s=0.0 if slow else 0.001, calls=int(calls)
            )
        return timing

    def tune_timing(self) -> Timing:
        """A block of tuning's quick comparisons: short, at least one call, a brief warm-up."""
        return dataclasses.replace(self.timing(self.tune_target_s), min_calls=1, warmup_calls=1, warmup_s=0.003)

    def to_json(self) -> dict:
        """The settings as results record them (the field ``tune_enabled`` is recorded as "tune")."""
        return {("tune" if k == "tune_enabled" else k): v for k, v in dataclasses.asdict(self).items()}
