"""How `zoo bench` chooses onnxruntime's session options, on scripted timings: no worker process and
nothing timed, so a change in how options are chosen shows here and not as a drift in a result.

The numbers are p50s in microseconds (or call times in nanoseconds where a cell's rounds are
scripted); the margin is the fraction by which a challenger must win to replace the incumbent.
"""

from pathlib import Path

import pytest

from zoo.export.bench.cells import TORCH, Cell, LoadedArtifact, settle
from zoo.export.bench.measuring import plan_rounds, rounds_due
from zoo.export.bench.preparation import PreparedPart
from zoo.export.bench.settings import DEFAULT_OPTIONS, KNOBS, Settings
from zoo.export.bench.timing import quiet_stats
from zoo.export.bench.tuning import (
    DEFAULTS,
    TUNED,
    TUNED_ONE_THREAD,
    beats,
    choose_finalist,
    finalists,
    knob_winner,
    search_knobs,
)

# --- one knob: which value is kept --------------------------------------------------------------


@pytest.mark.parametrize(
    "scores, margin, kept",
    [
        ([100.0, 96.0], 0.05, 0),  # 4% faster: inside the margin, the incumbent stays
        ([100.0, 94.0], 0.05, 1),  # 6% faster: switch
        ([100.0, 75.0], 0.25, 0),  # exactly the margin is not enough (100 * 0.75 == 75.0 exactly)
        ([100.0, 74.9], 0.25, 1),  # just past it is
        ([100.0, 90.0, 80.0], 0.05, 2),  # the fastest value wins, not the first that beats the incumbent
        ([100.0, 80.0, 80.0], 0.05, 1),  # a tie between challengers: the first listed
        ([80.0, 90.0, 100.0], 0.05, 0),  # the incumbent is fastest
        ([100.0, float("inf")], 0.05, 0),  # a value this build cannot load is never chosen
        ([100.0, 99.0], 0.0, 1),  # no margin: any gain switches
    ],
)
def test_knob_winner(scores, margin, kept):
    assert knob_winner(scores, margin) == kept


def test_beats_is_strict():
    assert beats(94.0, 100.0, 0.05) and not beats(95.0, 100.0, 0.05) and not beats(100.0, 100.0, 0.0)


# --- step 1: one knob at a time -----------------------------------------------------------------


def scripted(p50_of, batches=(1, 256)):
    """A measure() for search_knobs that looks each variant's p50 up, and records what it was asked."""
    asked = []

    def measure(variants):
        asked.append([dict(v) for v in variants])
        return [{b: p50_of(v, b) for b in batches} for v in variants]

    return measure, asked


def test_each_knob_starts_from_the_winner_of_the_previous_ones():
    def p50(options, batch):
        us = 100.0
        us *= {"ORT_ENABLE_EXTENDED": 0.90, "ORT_ENABLE_BASIC": 0.93}.get(options["graph_optimization_level"], 1.0)
        us *= 0.97 if options["execution_mode"] == "ORT_PARALLEL" else 1.0  # 3%: inside the margin
        us *= 0.80 if options["denormal_as_zero"] else 1.0
        us *= 0.70 if options["allow_spinning"] else 1.0
        return us

    measure, asked = scripted(p50)
    tuning = search_knobs(measure, threads=2, margin=0.05)

    want = {
        **DEFAULT_OPTIONS,
        "graph_optimization_level": "ORT_ENABLE_EXTENDED",
        "denormal_as_zero": True,
        "allow_spinning": True,
    }
    assert tuning.tuned_options == want
    assert tuning.changed == {
        "graph_optimization_level": "ORT_ENABLE_EXTENDED",
        "denormal_as_zero": True,
        "allow_spinning": True,
    }
    assert [s["knob"] for s in tuning.steps] == [k for k, _ in KNOBS]
    assert [s["chosen"] for s in tuning.steps] == ["ORT_ENABLE_EXTENDED", "ORT_SEQUENTIAL", True, True]
    # The first step tries every level, the defaults first; the second starts from the level kept.
    assert [v["graph_optimization_level"] for v in asked[0]] == list(dict(KNOBS)["graph_optimization_level"])
    assert asked[1][0]["graph_optimization_level"] == "ORT_ENABLE_EXTENDED"
    assert [v["execution_mode"] for v in asked[1]] == ["ORT_SEQUENTIAL", "ORT_PARALLEL"]
    assert asked[3][0]["denormal_as_zero"] is True
    # What the result records of each step: every value's p50 per batch, keyed as strings.
    assert tuning.steps[1]["p50_us"]["ORT_PARALLEL"] == {"1": pytest.approx(90 * 0.97), "256": pytest.approx(90 * 0.97)}


def test_one_thread_never_tries_spinning():
    measure, asked = scripted(lambda options, batch: 50.0 if options["allow_spinning"] else 100.0)
    tuning = search_knobs(measure, threads=1, margin=0.05)
    assert [s["knob"] for s in tuning.steps] == ["graph_optimization_level", "execution_mode", "denormal_as_zero"]
    assert all(not v["allow_spinning"] for step in asked for v in step)
    assert tuning.tuned_options == DEFAULT_OPTIONS and tuning.changed == {}


def test_a_value_is_scored_by_the_geometric_mean_over_the_tuning_batches():
    # Parallel execution: 30% faster at batch 1, 30% slower at batch 256; geomean 0.954x, a 4.6% gain.
    def p50(options, batch):
        if options["execution_mode"] == "ORT_PARALLEL":
            return 70.0 if batch == 1 else 130.0
        return 100.0

    measure, _ = scripted(p50)
    assert search_knobs(measure, threads=2, margin=0.05).tuned_options["execution_mode"] == "ORT_SEQUENTIAL"
    measure, _ = scripted(p50)
    assert search_knobs(measure, threads=2, margin=0.04).tuned_options["execution_mode"] == "ORT_PARALLEL"


def test_an_unloadable_value_is_skipped():
    def p50(options, batch):
        return float("inf") if options["graph_optimization_level"] == "ORT_ENABLE_LAYOUT" else 100.0

    measure, _ = scripted(p50)
    tuning = search_knobs(measure, threads=2, margin=0.05)
    assert tuning.tuned_options == DEFAULT_OPTIONS
    assert tuning.steps[0]["p50_us"]["ORT_ENABLE_LAYOUT"]["1"] == float("inf")


# --- step 2: the finalists and the choice per batch size ----------------------------------------


def test_finalists_spell_out_their_threads():
    tuned = {**DEFAULT_OPTIONS, "allow_spinning": True}
    assert finalists(DEFAULT_OPTIONS, 1) == {DEFAULTS: {**DEFAULT_OPTIONS, "intra_op_num_threads": 1}}
    assert finalists(tuned, 1) == {
        DEFAULTS: {**DEFAULT_OPTIONS, "intra_op_num_threads": 1},
        TUNED: {**tuned, "intra_op_num_threads": 1},
    }
    # Tuning kept the defaults on 2 threads: only the one-thread variant is worth a try.
    assert finalists(DEFAULT_OPTIONS, 2) == {
        DEFAULTS: {**DEFAULT_OPTIONS, "intra_op_num_threads": 2},
        TUNED_ONE_THREAD: {**DEFAULT_OPTIONS, "intra_op_num_threads": 1},
    }
    assert list(finalists(tuned, 4)) == [DEFAULTS, TUNED, TUNED_ONE_THREAD]
    assert [o["intra_op_num_threads"] for o in finalists(tuned, 4).values()] == [4, 4, 1]


@pytest.mark.parametrize(
    "p50s, margin, chosen",
    [
        ({DEFAULTS: 100.0, TUNED: 96.0, TUNED_ONE_THREAD: 97.0}, 0.05, DEFAULTS),  # nobody beats the margin
        ({DEFAULTS: 100.0, TUNED: 94.0, TUNED_ONE_THREAD: 97.0}, 0.05, TUNED),
        ({DEFAULTS: 100.0, TUNED: 94.0, TUNED_ONE_THREAD: 60.0}, 0.05, TUNED_ONE_THREAD),  # the fastest, not the first
        ({DEFAULTS: 100.0, TUNED: 75.0}, 0.25, DEFAULTS),  # exactly the margin: the defaults stay
        ({DEFAULTS: 100.0, TUNED: 74.9}, 0.25, TUNED),
        ({DEFAULTS: 100.0, TUNED: 80.0, TUNED_ONE_THREAD: 80.0}, 0.05, TUNED),  # a tie: the first listed
        ({DEFAULTS: 50.0, TUNED: 60.0, TUNED_ONE_THREAD: 70.0}, 0.05, DEFAULTS),
        ({DEFAULTS: 100.0}, 0.05, DEFAULTS),  # tuning off: nothing to choose
    ],
)
def test_choose_finalist(p50s, margin, chosen):
    assert choose_finalist(p50s, margin) == chosen


def rounds(*p50s_us, calls=5):
    """Scripted rounds: each round's calls all take that round's p50."""
    return [[int(us * 1000)] * calls for us in p50s_us]


def make_cell(samples: dict, threads=2) -> Cell:
    artifact = PreparedPart(
        model="m",
        part="decoder",
        run=Path("run"),
        path=Path("m.onnx"),
        input=Path("x.npy"),
        file_bytes=1,
        export_max_abs_error=0.0,
        flops_per_sample=1,
        input_shape=[1],
        ops=[],
    )
    names = [e for e in samples if e != TORCH]
    loaded = LoadedArtifact(
        artifact=artifact,
        threads=threads,
        worker_keys={e: f"m/decoder#{e}" for e in samples},
        setup_ms={e: 10.0 + i for i, e in enumerate(samples)},
        finalists={
            e: finalists(DEFAULT_OPTIONS, threads)[DEFAULTS]
            if e == DEFAULTS
            else {**DEFAULT_OPTIONS, "intra_op_num_threads": 1}
            for e in names
        },
    )
    cell = Cell(loaded=loaded, batch=1, samples=samples)
    cell.max_abs_diff = {e: 1e-7 * (i + 1) for i, e in enumerate(names)}
    return cell


def test_settle_chooses_on_the_odd_rounds_and_reports_the_even_ones():
    # Rounds 0, 2 report; rounds 1, 3 choose. On the choosing rounds one thread is 20% faster; on the
    # reporting rounds only 10%: the figures must be the reporting rounds' own.
    cell = make_cell(
        {
            TORCH: rounds(200, 200, 200, 200),
            DEFAULTS: rounds(100, 100, 100, 100),
            TUNED_ONE_THREAD: rounds(90, 80, 90, 80),
        }
    )
    outcome = settle(cell, quiet_keep=1.2, margin=0.05)
    assert outcome.choice == TUNED_ONE_THREAD
    assert outcome.pick.choice_p50_us == {DEFAULTS: 100.0, TUNED_ONE_THREAD: 80.0}
    assert outcome.pick.reported_p50_us == {DEFAULTS: 100.0, TUNED_ONE_THREAD: 90.0}
    assert outcome.stats["onnxruntime"]["p50_us"] == 90.0 and outcome.stats["torch"]["p50_us"] == 200.0
    assert outcome.pick.speedup == pytest.approx(100 / 90)
    # Everything reported belongs to the chosen finalist.
    assert outcome.options == {**DEFAULT_OPTIONS, "intra_op_num_threads": 1}
    assert outcome.max_abs_diff == 2e-7
    assert outcome.setup_ms == {"onnxruntime": 12.0, "torch": 10.0}


def test_settle_keeps_the_defaults_when_the_choosing_rounds_show_no_clear_gain():
    # The reporting rounds would favour one thread by 30%, but the choice is not made on them.
    cell = make_cell({TORCH: rounds(200, 200), DEFAULTS: rounds(100, 100), TUNED_ONE_THREAD: rounds(70, 96)})
    outcome = settle(cell, quiet_keep=1.2, margin=0.05)
    assert outcome.choice == DEFAULTS
    assert outcome.pick.speedup == 1.0 and outcome.stats["onnxruntime"]["p50_us"] == 100.0


def test_settle_with_one_finalist_reports_every_round():
    cell = make_cell({TORCH: rounds(200, 190), DEFAULTS: rounds(100, 110)}, threads=1)
    outcome = settle(cell, quiet_keep=1.2, margin=0.05)
    assert outcome.choice == DEFAULTS
    assert outcome.stats["onnxruntime"]["rounds"] == 2 and outcome.stats["torch"]["rounds"] == 2


def test_settle_drops_disturbed_rounds_of_each_runtime_against_its_own_best():
    # PyTorch's third round ran 50% slow (another process had the core): dropped, and only PyTorch's.
    cell = make_cell({TORCH: rounds(200, 200, 300), DEFAULTS: rounds(100, 110, 100)}, threads=1)
    outcome = settle(cell, quiet_keep=1.2, margin=0.05)
    assert outcome.stats["torch"]["rounds_kept"] == 2 and outcome.stats["torch"]["p50_us"] == 200.0
    assert outcome.stats["onnxruntime"]["rounds_kept"] == 3


def test_quiet_stats_keeps_rounds_within_keep_of_the_best():
    stats = quiet_stats(rounds(100, 119, 121, 150), keep=1.2)
    assert stats["rounds_kept"] == 2 and stats["rounds"] == 4 and stats["calls"] == 10
    assert stats["round_p50_us"] == [100.0, 119.0, 121.0, 150.0]
    assert stats["p50_all_rounds_us"] == pytest.approx(120.0)


# --- how many rounds a cell gets, and when ------------------------------------------------------


@pytest.mark.parametrize(
    "slowest_us, planned",
    [
        (5_000.0, 16),  # fast calls: the full 16 rounds
        (20_000.0, 6),  # 0.12 s of calls at 20 ms a call
        (1_500_000.0, 3),  # a 1.5 s call is still timed min_rounds times
    ],
)
def test_plan_rounds(slowest_us, planned):
    assert plan_rounds([1.0, slowest_us], Settings()) == planned


def test_rounds_spread_evenly_over_the_passes():
    cell = make_cell({TORCH: [], DEFAULTS: []}, threads=1)
    assert rounds_due(cell, 0, 16) == 1  # before the first round, nothing is planned
    cell.planned_rounds = 6
    assert [rounds_due(cell, visit, 16) for visit in range(16)] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6]
    assert rounds_due(cell, 0, 1) == 6  # one pass: every round at once


def test_timing_from_the_previous_round():
    s = Settings()
    first = s.timing(0.01)
    assert first.calls is None and first.warmup_calls == s.warmup_calls
    fast = s.timing(0.01, previous_ns=10_000)  # 10 us a call: 1000 calls fill 10 ms
    assert (fast.calls, fast.warmup_calls, fast.warmup_s) == (1000, 1, 0.001)
    slow = s.timing(0.01, previous_ns=0.2e9)  # a 0.2 s call warms itself up; at least min_calls
    assert (slow.calls, slow.warmup_calls, slow.warmup_s) == (s.min_calls, 0, 0.0)


def test_settings_record_the_tuning_switch_as_tune():
    recorded = Settings.quick(tune_enabled=False).to_json()
    assert recorded["tune"] is False and "tune_enabled" not in recorded
    assert recorded["batches"] == (1, 64)
