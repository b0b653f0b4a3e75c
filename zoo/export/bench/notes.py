"""The notes a result carries: how each figure was taken, in words, and what disturbed this run."""

from zoo.export.bench.settings import Settings


def notes(
    settings: Settings,
    *,
    quick: bool,
    alone: bool,
    machine: dict,
    load_start: list,
    load_end: list,
    cores: int,
    ort_imported_torch: bool,
) -> list:
    s = settings
    busy = load_start and max(load_start[0], load_end[0] if load_end else 0) > 0.5 * cores
    gpu = (
        f"this machine has {machine['gpu']}, but this benchmark times the CPU only"
        if machine.get("gpu")
        else "no GPU was available to this run; every figure is CPU only"
    )
    found = [
        "Weights are seeded initial weights (a run folder written without training): inference cost does "
        "not depend on the values. Inputs: uniform [0, 1) data for encoders, prior draws for decoders, "
        "N(0, I) for generators; the same arrays for both runtimes.",
        f"Timing: time.perf_counter_ns around each call, garbage collector off. Per cell and runtime about "
        f"{s.cell_s * 1e3:g} ms of calls in {s.min_rounds} to {s.rounds} interleaved rounds (fewer where calls "
        f"are slow), spread over {s.passes} pass(es) over all the cells; the runtimes swap who goes first every "
        "round. Not counted: "
        f"{s.warmup_calls} warm-up calls and {s.warmup_s * 1e3:g} ms before a cell's first round (at most "
        "0.5 s), one call and 1 ms before later rounds (nothing where a call takes over 50 ms).",
        "Disturbed rounds: this shared machine has stretches, from tens of milliseconds to seconds, where "
        "everything runs 1.5-2x slower. A round whose p50 is more than "
        f"{100 * (s.quiet_keep - 1):.0f}% above the best round of the same runtime and cell is dropped (each "
        "runtime against its own best, alike); the percentiles are over the calls of the rounds kept "
        "(rounds_kept of rounds; round_p50_us lists every round, p50_all_rounds_us is the p50 with none dropped).",
        "onnxruntime's row in each cell is the finalist the cell's odd rounds chose; its figures, PyTorch's and "
        "the tuning gain come from the even rounds (see the tuning section of the Markdown).",
        "Processes: one onnxruntime worker and one PyTorch worker per thread count, never running at the same "
        "time; threads = the budget both got: torch.set_num_threads(T) (PyTorch keeps small ops on one thread "
        "itself), onnxruntime intra_op_num_threads <= T as tuning chose it per batch size (options."
        "intra_op_num_threads), one inter-op thread each. The onnxruntime worker "
        f"{'imported torch (unexpected)' if ort_imported_torch else 'never imports torch'}.",
        f"Ceiling: a {s.ceiling_n}x{s.ceiling_n} fp32 torch.matmul (PyTorch worker) and the same onnxruntime "
        f"MatMul (onnxruntime worker), {s.ceiling_calls} of each in each of the {s.passes} passes (after a warm-up "
        "in the first), at the same thread count; ceiling_gflops is the rate of the fastest of all those calls, either "
        "library (at the top level: all cores; per thread count in ceiling_gflops_by_threads). "
        "ceiling_fraction = gflops / the ceiling at the row's thread count. GEMMs whose operands stay in cache "
        "can run faster than this large product, so a fraction can pass 1.",
        "Floor: p50 of session.run on a one-Identity ONNX graph ([1, 16] float32) and of one torch "
        "Linear(16, 16) at batch 1, measured in every pass; floor_multiple = p50 / the "
        "runtime's floor.",
        "FLOPs per sample: torch.utils.flop_counter on each part's PyTorch module at batch 1 (2 x MACs of "
        "matrix products and convolutions; activations and reshapes are not counted).",
        "setup_ms: onnxruntime InferenceSession creation with the chosen options; torch: rebuilding the "
        "module from the run folder (config + safetensors). file_bytes: the .onnx artifact.",
        f"GPU: not measured; {gpu}.",
    ]
    if busy:
        found.append(
            f"The machine was shared while this ran (load average {load_start} at the start, {load_end} at "
            f"the end, on {cores} cores): absolute times are pessimistic and noisier than on an idle "
            "machine; ratios were taken side by side, so they suffer less."
        )
    if quick:
        found.append("--quick: a smoke run with very few calls per cell; its numbers are not for reading.")
    if not alone:
        found.append(
            "Another zoo bench was running on this machine at the same time: both runs' numbers are disturbed."
        )
    if not s.tune_enabled:
        found.append("onnxruntime ran with the default options (no tuning in this run).")
    return found
