"""Timing calls and summarising the times: used by the workers (time_calls) and by the orchestrator
(percentiles, quiet_stats). Only numpy here: the onnxruntime worker imports this module.
"""

import dataclasses
import gc
import math
import time

import numpy as np

MAX_WARMUP_NS = 500_000_000  # a warm-up stops after this, whatever warmup_calls asked: slow calls warm fast


@dataclasses.dataclass(frozen=True)
class Timing:
    """How to time one block of calls; travels to a worker as the keyword arguments of time_calls."""

    target_s: float  # the block's length, when ``calls`` is not given
    min_calls: int
    max_calls: int
    warmup_calls: int
    warmup_s: float
    calls: int | None = None  # an exact number of calls, from the previous round's p50

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def time_calls(fn, target_s=0.0, min_calls=1, max_calls=1, warmup_calls=0, warmup_s=0.0, calls=None) -> list:
    """Nanoseconds of each timed call of ``fn()``, after a warm-up that is not counted. Unless
    ``calls`` is given, the number of calls is chosen from the warm-up so that the block lasts about
    ``target_s``."""
    was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of a 5 us call would be an outlier of our making
    try:
        start = time.perf_counter_ns()
        deadline = start + int(warmup_s * 1e9)
        done = 0
        warmup_calls = max(warmup_calls, 0 if calls else 1)  # the estimate needs one call
        while done < warmup_calls or time.perf_counter_ns() < deadline:
            fn()
            done += 1
            if time.perf_counter_ns() - start > MAX_WARMUP_NS:
                break
        if calls is None:
            per_call = max((time.perf_counter_ns() - start) / done, 1.0)
            calls = int(min(max(target_s * 1e9 / per_call, min_calls), max_calls))
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t0)
        return samples
    finally:
        if was_enabled:
            gc.enable()


def percentiles(samples_ns) -> dict:
    p50, p90, p99 = np.percentile(np.asarray(samples_ns, dtype=np.float64), [50, 90, 99]) / 1e3
    return {"p50_us": float(p50), "p90_us": float(p90), "p99_us": float(p99)}


def quiet_stats(rounds_ns: list, keep: float) -> dict:
    """Percentiles over the calls of the rounds that ran undisturbed: those whose p50 is within
    ``keep`` times the best round's. On a shared machine a whole round sometimes runs 1.5-2x slower
    because something else had the core; the runtimes take turns, so such a round says nothing
    about either of them. Each runtime is filtered against its own best round, the same way."""
    p50s = [percentiles(ns)["p50_us"] for ns in rounds_ns]
    kept = [ns for ns, p in zip(rounds_ns, p50s) if p <= keep * min(p50s)]
    return {
        **percentiles([x for ns in kept for x in ns]),
        "p50_all_rounds_us": percentiles([x for ns in rounds_ns for x in ns])["p50_us"],
        "rounds_kept": len(kept),
        "rounds": len(rounds_ns),
        "round_p50_us": p50s,
        "calls": sum(len(ns) for ns in kept),
    }


def geomean(values) -> float:
    values = list(values)
    return float(math.exp(sum(math.log(v) for v in values) / len(values)))
