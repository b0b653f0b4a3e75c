"""Choosing onnxruntime's session options per artifact and thread budget, in two steps:

1. One knob at a time (settings.KNOBS: graph optimisation level, execution mode, denormals as zero,
   spinning), at ``tune_batches``, with the whole thread budget; each step starts from the winner of
   the previous ones, and a new value is kept only when it wins by more than ``tune_margin``.
2. Per batch size, inside the measurement itself, among the finalists: the defaults, the tuned
   options and, with a budget above one thread, the tuned options on a single intra-op thread (tiny
   batches lose more to waking a pool than they gain from it). Half the rounds choose, the other
   half report (cells.settle); the defaults stay unless another finalist wins by ``tune_margin``.

Only decisions here: every function takes measured numbers (or a function that measures) and returns
a choice, so the choices are tested with scripted timings (tests/test_bench_tuning.py).
"""

import dataclasses

from zoo.export.bench.settings import DEFAULT_OPTIONS, KNOBS
from zoo.export.bench.timing import geomean

DEFAULTS, TUNED, TUNED_ONE_THREAD = "defaults", "tuned", "tuned, 1 thread"  # the finalists' names


@dataclasses.dataclass
class BatchPick:
    """Step 2's outcome for one batch size."""

    choice: str  # the finalist whose figures are reported
    options: dict  # its session options
    choice_p50_us: dict  # finalist -> p50 over the rounds that chose
    reported_p50_us: dict  # finalist -> p50 over the rounds that report
    speedup: float  # the defaults' reported p50 over the chosen finalist's


@dataclasses.dataclass
class ArtifactTuning:
    """Both steps for one artifact at one thread budget, as results record them."""

    tuned_options: dict  # step 1's winner
    changed: dict  # the knobs whose value differs from DEFAULT_OPTIONS
    steps: list  # per knob: the value kept and every value's p50 per batch
    finalists: dict  # finalist name -> session options, intra-op threads spelled out
    per_batch: dict = dataclasses.field(default_factory=dict)  # batch (str) -> BatchPick

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def beats(candidate_us: float, incumbent_us: float, margin: float) -> bool:
    """Whether a challenger is faster than the incumbent by more than ``margin`` (a fraction):
    switching on noise would make choices flip from run to run."""
    return candidate_us < incumbent_us * (1 - margin)


def knob_winner(scores: list, margin: float) -> int:
    """Index of the value kept among ``scores`` (one per value, lower is faster; the incumbent
    first): the fastest, if it beats the incumbent by more than ``margin``; else the incumbent."""
    best = min(range(len(scores)), key=scores.__getitem__)
    return best if best and beats(scores[best], scores[0], margin) else 0


def knob_variants(current: dict, knob: str, values) -> list:
    """The incumbent options first, then one variant per other value of ``knob``."""
    return [current] + [{**current, knob: v} for v in values if v != current[knob]]


def search_knobs(measure, threads: int, margin: float) -> ArtifactTuning:
    """Step 1. ``measure(variants)`` returns, for each options dict, its p50 (us) per tuning batch
    size; a variant is scored by the geometric mean over those batch sizes."""
    current, steps = dict(DEFAULT_OPTIONS), []
    for knob, values in KNOBS:
        if knob == "allow_spinning" and threads == 1:
            continue  # one thread: no pool to spin
        variants = knob_variants(current, knob, values)
        p50s = measure(variants)
        current = variants[knob_winner([geomean(p.values()) for p in p50s], margin)]
        steps.append(
            {
                "knob": knob,
                "chosen": current[knob],
                "p50_us": {str(v[knob]): {str(b): x for b, x in p.items()} for v, p in zip(variants, p50s)},
            }
        )
    return ArtifactTuning(
        tuned_options=current,
        changed={k: v for k, v in current.items() if DEFAULT_OPTIONS[k] != v},
        steps=steps,
        finalists=finalists(current, threads),
    )


def finalists(tuned: dict, threads: int) -> dict:
    """Step 2's candidates, each with its intra-op thread count spelled out. The tuned options are
    left out where they are the defaults; one thread is tried only where the budget has more."""
    out = {DEFAULTS: {**DEFAULT_OPTIONS, "intra_op_num_threads": threads}}
    if tuned != DEFAULT_OPTIONS:
        out[TUNED] = {**tuned, "intra_op_num_threads": threads}
    if threads > 1:
        out[TUNED_ONE_THREAD] = {**tuned, "intra_op_num_threads": 1}
    return out


def untuned_finalists(threads: int) -> dict:
    """The only candidate when tuning is off: the defaults with the whole budget."""
    return {DEFAULTS: {**DEFAULT_OPTIONS, "intra_op_num_threads": threads}}


def choose_finalist(choice_p50_us: dict, margin: float) -> str:
    """Step 2's choice for one batch size from the choosing rounds' p50 per finalist: the fastest
    (the first listed on a tie), if it beats the defaults by more than ``margin``; else the defaults."""
    best = min(choice_p50_us, key=choice_p50_us.__getitem__)
    return best if beats(choice_p50_us[best], choice_p50_us[DEFAULTS], margin) else DEFAULTS
