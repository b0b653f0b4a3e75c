"""``zoo bench``: onnxruntime against PyTorch eager, for every model and exported part.

How a run goes (see DESIGN.md, "Performance: how we measure"):

1. Prepare: every model is built with seeded weights (inference speed does not depend on training),
   written as a run folder and exported with ``zoo.export.onnx`` (the exporter users get). Each part's
   FLOPs per sample are counted from its PyTorch module with ``FlopCounterMode`` (2 x MACs of the
   matrix products and convolutions); its inputs are drawn once and saved, so both runtimes see the
   very same arrays.
2. Measure, once per thread budget T: two worker processes, one per runtime (``python -m
   zoo.export.bench --worker onnxruntime|torch --threads T``): ``torch.set_num_threads(T)`` on one
   side, ``intra_op_num_threads <= T`` on the other, one inter-op thread each. Only one of them works
   at any moment, and they take turns cell by cell in several rounds, so a change in machine load
   hits both runtimes alike. The onnxruntime worker never imports torch, and its thread pool does not
   spin unless tuning chose that.
3. Tune: per artifact and thread budget, onnxruntime's session options are chosen from measurement:
   one knob at a time (graph optimisation level, execution mode, denormals as zero, spinning), then
   per batch size, inside the measurement, among the defaults, the tuned options and the tuned
   options on one thread (half the rounds choose, the other half report); a change is kept only when
   it wins by more than ``tune_margin``.
4. References, measured in the same run beside every model: the fp32 matmul ceiling (a large square
   ``torch.matmul`` and the same onnxruntime ``MatMul``) and the fixed cost of one call (onnxruntime on
   an Identity graph, one small torch ``Linear``).
5. Report: one row per (model, part, runtime, batch, threads) in ``<out>/inference-<machine>-<date>``
   ``.json``, ``.md`` and ``.png``.

Nothing in here knows any architecture: models come from ``zoo.list_models()`` and are driven through
the ``AutoEncoder`` interface and the exporter's part wrappers.
"""

import contextlib
import dataclasses
import datetime
import gc
import importlib.util
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

STEM = "inference"
RUNTIMES = ("onnxruntime", "torch")
PARTS = ("encoder", "decoder", "generator")
CHECKOUT = Path(__file__).resolve().parents[1]  # the source tree (an editable install points here)
SEED = 0

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
FLOOR_WIDTH = 16  # the floor graphs' feature width: an Identity for onnxruntime, Linear(16, 16) for torch


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long to measure. The full run takes a few minutes on 2 cores; --quick well under one."""

    batches: tuple = (1, 8, 64, 256, 1024)
    threads: tuple = ()  # () means 1 and all cores
    # This machine's speed drifts between ~1x and ~1.5x every few tens of milliseconds (other virtual
    # machines on the host), so the runtimes take turns in many short rounds and both sample the slow
    # and the fast stretches alike; then the disturbed rounds are dropped (quiet_stats).
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
    tune: bool = True
    tune_batches: tuple = (1, 256)  # where the session-option knobs are compared
    tune_rounds: int = 4
    tune_target_s: float = 0.01
    tune_margin: float = 0.05  # a setting must be this much faster than the incumbent to be kept

    @classmethod
    def quick(cls, **changes):
        """A smoke run for CI: every code path, two batch sizes, tiny samples. Its numbers are not for
        reading."""
        quick = dict(batches=(1, 64), cell_s=0.006, rounds=2, passes=1, min_rounds=2, min_calls=2, max_calls=1000,
                     warmup_calls=1, warmup_s=0.001, ceiling_n=512, ceiling_calls=2, floor_s=0.005,
                     tune_batches=(1,), tune_rounds=1, tune_target_s=0.002)
        return cls(**{**quick, **changes})

    def timing(self, target_s, previous_ns=None) -> dict:
        """Arguments of ``time_calls``. ``previous_ns``: the p50 of this cell's previous round, which
        sets the number of calls directly and shortens the warm-up (arenas and caches are warm)."""
        timing = {"target_s": target_s, "min_calls": self.min_calls,
                  "max_calls": self.max_calls, "warmup_calls": self.warmup_calls, "warmup_s": self.warmup_s}
        if previous_ns:
            slow = previous_ns > 0.05e9  # such a call is its own warm-up
            calls = min(max(timing["target_s"] * 1e9 / previous_ns, self.min_calls), self.max_calls)
            timing.update(warmup_calls=0 if slow else 1, warmup_s=0.0 if slow else 0.001, calls=int(calls))
        return timing


# --------------------------------------------------------------------------------------------------
# Worker side: one process per runtime and thread count, driven by JSON lines on stdin/stdout.
# --------------------------------------------------------------------------------------------------


MAX_WARMUP_NS = 500_000_000  # a warm-up stops after this, whatever warmup_calls asked: slow calls warm fast


def time_calls(fn, target_s, min_calls, max_calls, warmup_calls, warmup_s, calls=None) -> list:
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


def session_options(threads: int, options: dict, optimized_path=None):
    """``threads`` is the budget; ``options["intra_op_num_threads"]`` (when set) may use fewer."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = min(options.get("intra_op_num_threads") or threads, threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, options["graph_optimization_level"])
    so.execution_mode = getattr(ort.ExecutionMode, options["execution_mode"])
    spin = "1" if options["allow_spinning"] else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.add_session_config_entry("session.set_denormal_as_zero", "1" if options["denormal_as_zero"] else "0")
    if optimized_path:
        so.optimized_model_filepath = str(optimized_path)
    return so


class OrtBackend:
    """onnxruntime only (no torch in this process)."""

    def __init__(self, threads: int):
        import onnxruntime as ort

        self.ort, self.threads, self.sessions = ort, threads, {}

    def context(self):
        return contextlib.nullcontext()

    def load(self, key, path, options, optimized_path=None) -> dict:
        so = session_options(self.threads, options, optimized_path)
        t0 = time.perf_counter_ns()
        session = self.ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        setup_ms = (time.perf_counter_ns() - t0) / 1e6
        self.sessions[key] = (session, session.get_inputs()[0].name, [o.name for o in session.get_outputs()])
        reply = {"setup_ms": setup_ms}
        if optimized_path:
            import onnx

            reply["optimized_ops"] = [n.op_type for n in onnx.load(str(optimized_path)).graph.node]
        return reply

    def call(self, key, x):
        session, name, outputs = self.sessions[key]
        feed = {name: x}
        return lambda: session.run(outputs, feed)

    def outputs(self, key, x) -> list:
        return list(self.call(key, x)())

    def floor(self):
        """One call on a graph that does nothing: the fixed cost of session.run from Python."""
        if "__floor__" not in self.sessions:
            from onnx import TensorProto, helper

            shape = ["batch", FLOOR_WIDTH]
            graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor",
                                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
            model.ir_version = 9
            so = session_options(self.threads, DEFAULT_OPTIONS)
            session = self.ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            self.sessions["__floor__"] = (session, "x", ["y"])
        return self.call("__floor__", np.zeros((1, FLOOR_WIDTH), np.float32))

    def matmul(self, n: int, calls: int, warmup: bool = True) -> list:
        """The same square product as the torch worker's, through onnxruntime's MatMul (MLAS)."""
        from onnx import TensorProto, helper

        def value(name):
            return helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])

        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                                  [value("a"), value("b")], [value("c")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 9
        session = self.ort.InferenceSession(model.SerializeToString(), session_options(self.threads, DEFAULT_OPTIONS),
                                            providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(SEED)
        feed = {k: rng.standard_normal((n, n), dtype=np.float32) for k in ("a", "b")}
        return time_calls(lambda: session.run(["c"], feed), 0.0, calls, calls, int(warmup), 0.0, calls=calls)


class TorchBackend:
    """PyTorch eager under ``torch.inference_mode``, on the exporter's own part wrappers."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only settable before any parallel work
            torch.set_num_interop_threads(1)
        self.torch, self.modules, self.runs = torch, {}, {}

    def context(self):
        return self.torch.inference_mode()

    def load(self, key, run, part) -> dict:
        from zoo.export.parts import make_parts
        from zoo.run_folder import load_run

        t0 = time.perf_counter_ns()
        loaded = load_run(run)
        (module,) = [p.module.eval() for p in make_parts(loaded.model, loaded.prior) if p.name == part]
        setup_ms = (time.perf_counter_ns() - t0) / 1e6
        self.modules[key] = module
        return {"setup_ms": setup_ms}

    def call(self, key, x):
        module, x = self.modules[key], self.torch.from_numpy(x)
        return lambda: module(x)

    def outputs(self, key, x) -> list:
        with self.torch.inference_mode():
            out = self.call(key, x)()
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    def floor(self):
        if "__floor__" not in self.modules:
            self.torch.manual_seed(SEED)
            self.modules["__floor__"] = self.torch.nn.Linear(FLOOR_WIDTH, FLOOR_WIDTH).eval()
        return self.call("__floor__", np.zeros((1, FLOOR_WIDTH), np.float32))

    def matmul(self, n: int, calls: int, warmup: bool = True) -> list:
        gen = self.torch.Generator().manual_seed(SEED)
        a, b = (self.torch.randn(n, n, generator=gen) for _ in range(2))
        with self.torch.inference_mode():
            return time_calls(lambda: self.torch.matmul(a, b), 0.0, calls, calls, int(warmup), 0.0, calls=calls)


def _serve(backend, requests, replies) -> None:
    inputs = {}

    def batch_of(path, batch):
        if path not in inputs:
            inputs[path] = np.load(path)
        return np.ascontiguousarray(inputs[path][:batch])

    for line in requests:
        req = json.loads(line)
        op = req.pop("op")
        try:
            if op == "quit":
                return
            if op == "load":
                reply = backend.load(**req)
            elif op == "drop":
                for store in (getattr(backend, "sessions", {}), getattr(backend, "modules", {})):
                    store.pop(req["key"], None)
                reply = {}
            elif op == "time":
                x = batch_of(req["input"], req["batch"])
                if req.get("save"):  # the outputs for the accuracy check; also a first warm-up call
                    np.savez(req["save"], *backend.outputs(req["key"], x))
                fn = backend.call(req["key"], x)
                with backend.context():
                    reply = {"ns": time_calls(fn, **req["timing"])}
            elif op == "floor":
                fn = backend.floor()
                with backend.context():
                    reply = {"ns": time_calls(fn, **req["timing"])}
            elif op == "matmul":
                reply = {"ns": backend.matmul(req["n"], req["calls"], req.get("warmup", True))}
            elif op == "modules":
                reply = {"modules": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnxruntime"))}
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # reported to the orchestrator, which raises it as a ZooError
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            reply = {"error": f"{op}: {type(exc).__name__}: {first}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def worker_main(argv) -> None:
    runtime, threads = argv[argv.index("--worker") + 1], int(argv[argv.index("--threads") + 1])
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    backend = OrtBackend(threads) if runtime == "onnxruntime" else TorchBackend(threads)
    replies.write(json.dumps({"ready": runtime, "threads": threads}) + "\n")
    replies.flush()
    _serve(backend, sys.stdin, replies)


# --------------------------------------------------------------------------------------------------
# Orchestrator side.
# --------------------------------------------------------------------------------------------------


class Worker:
    """A worker process; calling it sends one request and waits for its reply."""

    def __init__(self, runtime: str, threads: int, cwd):
        self.runtime, self.threads = runtime, threads
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zoo.export.bench", "--worker", runtime, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(cwd))
        # cwd: a folder with no Python packages in it, since `python -m` puts it first on sys.path.
        self._read()  # {"ready": ...}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise ZooError(f"the {self.runtime} benchmark worker ({self.threads} threads) exited "
                           f"with status {self.proc.wait()}; its error is above")
        reply = json.loads(line)
        if "error" in reply:
            raise ZooError(f"{self.runtime} worker: {reply['error']}")
        return reply

    def __call__(self, op: str, **request) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_models(names) -> list:
    """Registered names; each argument may be a wildcard. Unknown names suggest close ones."""
    import zoo

    if not names:
        return zoo.list_models()
    chosen = []
    for name in names:
        matches = zoo.list_models(name) or [zoo.get_spec(name).name]  # get_spec raises with a hint
        chosen += [m for m in matches if m not in chosen]
    return chosen


def make_run(folder: Path, name: str) -> Path:
    """A run folder of ``name`` with seeded weights and a prior fitted to its codes of random data,
    laid out as `zoo train` writes one (config.json + model.safetensors)."""
    import torch

    import zoo
    from zoo.run_folder import write_run

    torch.manual_seed(SEED)
    model = zoo.create_model(name).eval()
    prior = model.make_prior()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        prior.fit(model.encode(torch.rand(512, *model.data_shape, generator=gen)))
    return write_run(folder, name, model, prior, dataset=zoo.get_spec(name).default_dataset,
                     note="benchmark run: seeded initial weights, not trained")


def count_flops(module, example) -> int:
    """FLOPs of one forward pass, as torch's FlopCounterMode counts them (2 x MACs of matmuls and
    convolutions; elementwise ops are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return int(counter.get_total_flops())


def prepare(models, work: Path, max_batch: int, log=_log) -> dict:
    """Export every model and write each part's inputs; returns {model: {part: artifact info}}."""
    import onnx
    import torch

    from zoo.export.onnx import export_artifacts
    from zoo.export.parts import make_parts
    from zoo.run_folder import load_run

    artifacts = {}
    for name in models:
        t0 = time.perf_counter()
        run_dir = make_run(work / "runs" / name, name)
        with contextlib.redirect_stderr(io.StringIO()):
            exported = {a.part: a for a in export_artifacts(run_dir)}
        run = load_run(run_dir)
        gen = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            # The same seeded inputs for both runtimes; codes spread as the prior spreads them.
            data = {part.name: (part.module, part.make_input(max_batch, gen))
                    for part in make_parts(run.model, run.prior)}
        artifacts[name] = {}
        for part, (module, inputs) in data.items():
            path = work / "inputs" / f"{name}-{part}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, inputs.numpy().astype(np.float32))
            artifact = exported[part]
            artifacts[name][part] = {
                "run": str(run_dir),
                "path": str(artifact.path),
                "input": str(path),
                "file_bytes": artifact.bytes,
                "export_max_abs_error": artifact.max_abs_error,
                "flops_per_sample": count_flops(module.eval(), inputs[:1]),
                "input_shape": list(inputs.shape[1:]),
                "ops": [n.op_type for n in onnx.load(str(artifact.path)).graph.node],
            }
        log(f"exported {name} in {time.perf_counter() - t0:.1f} s")
    return artifacts


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
    return {**percentiles([x for ns in kept for x in ns]),
            "p50_all_rounds_us": percentiles([x for ns in rounds_ns for x in ns])["p50_us"],
            "rounds_kept": len(kept), "rounds": len(rounds_ns), "round_p50_us": p50s,
            "calls": sum(len(ns) for ns in kept)}


def _geomean(values) -> float:
    return float(math.exp(sum(math.log(v) for v in values) / len(values)))


def _options_key(options: dict) -> str:
    return json.dumps(options, sort_keys=True)


def measure_candidates(ort, key: str, art: dict, candidates: list, batches, s: Settings) -> list:
    """p50 (us) per batch for each candidate, a candidate being {batch: session options}, measured in
    interleaved rounds on fresh sessions. A candidate this build cannot load gets infinity."""
    sessions = {}
    for candidate in candidates:
        for options in candidate.values():
            k = _options_key(options)
            if k not in sessions:
                try:
                    ort("load", key=f"{key}#{len(sessions)}", path=art["path"], options=options)
                    sessions[k] = f"{key}#{len(sessions)}"
                except ZooError:
                    sessions[k] = None
    rounds = [{b: [] for b in batches} for _ in candidates]
    for _ in range(s.tune_rounds):
        for i, candidate in enumerate(candidates):
            for batch in batches:
                session = sessions[_options_key(candidate[batch])]
                if session:
                    timing = {**s.timing(s.tune_target_s), "min_calls": 1, "warmup_calls": 1, "warmup_s": 0.003}
                    rounds[i][batch].append(ort("time", key=session, input=art["input"], batch=batch,
                                                timing=timing)["ns"])
    for session in filter(None, sessions.values()):
        ort("drop", key=session)
    return [{b: (quiet_stats(v, s.quiet_keep)["p50_us"] if v else math.inf) for b, v in per.items()} for per in rounds]


def tune(ort, key: str, art: dict, threads: int, s: Settings) -> dict:
    """Step 1 of choosing onnxruntime's session options for one artifact: one knob at a time
    (KNOBS), at ``s.tune_batches``, with the whole thread budget; a new value is kept only when it is
    faster by more than ``s.tune_margin``. Returns the finalists for step 2 (``settle``): the
    defaults, the tuned options, and with a budget above one thread the tuned options on a single
    intra-op thread (tiny batches lose more to waking a pool than they gain from it)."""
    current, steps = dict(DEFAULT_OPTIONS), []
    for knob, values in KNOBS:
        if knob == "allow_spinning" and threads == 1:
            continue  # one thread: no pool to spin
        variants = [current] + [{**current, knob: v} for v in values if v != current[knob]]
        p50s = measure_candidates(ort, key, art, [dict.fromkeys(s.tune_batches, v) for v in variants],
                                  s.tune_batches, s)
        scores = [_geomean(p.values()) for p in p50s]
        best = min(range(len(variants)), key=scores.__getitem__)
        if best and scores[best] < scores[0] * (1 - s.tune_margin):
            current = variants[best]
        steps.append({"knob": knob, "chosen": current[knob],
                      "p50_us": {str(v[knob]): {str(b): x for b, x in p.items()} for v, p in zip(variants, p50s)}})
    return {"tuned_options": current, "changed": {k: v for k, v in current.items() if DEFAULT_OPTIONS[k] != v},
            "steps": steps, "finalists": finalists(current, threads)}


def finalists(tuned: dict, threads: int) -> dict:
    """Step 2's candidates, each with its intra-op thread count spelled out."""
    out = {"defaults": {**DEFAULT_OPTIONS, "intra_op_num_threads": threads}}
    if tuned != DEFAULT_OPTIONS:
        out["tuned"] = {**tuned, "intra_op_num_threads": threads}
    if threads > 1:
        out["tuned, 1 thread"] = {**tuned, "intra_op_num_threads": 1}
    return out


def measure_cell(workers: dict, cell: dict, visit: int, s: Settings, work: Path) -> None:
    """Visit ``visit`` (0-based) of an (artifact, batch) cell. Each round times PyTorch and every
    onnxruntime finalist once, in an order that rotates every round; the call times go to
    ``cell["samples"][entry]``, one list per round. The first visit times one round, saves every
    entry's outputs for the accuracy check and plans the rounds: ``s.rounds``, fewer where calls are
    slow (never under ``s.min_rounds``), so that each entry times about ``s.cell_s``; the later visits
    spread the rest evenly over the remaining passes."""
    samples, p50s = cell["samples"], cell["round_p50"]
    entries = list(cell["keys"])  # "torch", then the onnxruntime finalists
    saved = {e: work / f"out-{i}.npz" for i, e in enumerate(entries)}

    def due() -> int:  # rounds this cell should have had by the end of this visit
        if "planned" not in cell:
            return 1
        if s.passes == 1:
            return cell["planned"]
        return 1 + visit * (cell["planned"] - 1) // (s.passes - 1)

    while len(p50s["torch"]) < due():
        r = len(p50s["torch"])
        for e in entries[r % len(entries):] + entries[:r % len(entries)]:
            worker = workers["torch" if e == "torch" else "onnxruntime"]
            ns = worker("time", key=cell["keys"][e], input=cell["input"], batch=cell["batch"],
                        timing=s.timing(s.cell_s / cell.get("planned", s.rounds),
                                        previous_ns=p50s[e][-1] * 1e3 if p50s[e] else None),
                        save=str(saved[e]) if not p50s[e] else None)["ns"]
            samples[e].append(ns)
            p50s[e].append(percentiles(ns)["p50_us"])
        if "planned" not in cell:
            slowest_s = max(p50s[e][0] for e in entries) / 1e6
            cell["planned"] = int(min(s.rounds, max(s.min_rounds, s.cell_s / slowest_s)))
            outs = {}
            for e, path in saved.items():
                with np.load(path) as npz:
                    outs[e] = [npz[f"arr_{i}"].astype(np.float64) for i in range(len(npz.files))]
            cell["max_abs_diff"] = {e: max(float(np.max(np.abs(a - b))) for a, b in zip(outs[e], outs["torch"]))
                                    for e in entries if e != "torch"}


def settle(cell: dict, s: Settings) -> dict:
    """Step 2 of tuning, and the cell's figures, from two halves of its rounds: the odd rounds choose
    the onnxruntime finalist (the defaults stay unless another is faster by ``s.tune_margin``), the
    even rounds (spread over the same passes) give the reported figures of the chosen finalist and of
    PyTorch, and the gain over the defaults; so the choice is not judged on the samples that made it."""
    names = [e for e in cell["keys"] if e != "torch"]

    def half(entry, parity):  # with nothing to choose between, every round reports
        rounds = cell["samples"][entry][parity::2] if len(names) > 1 else cell["samples"][entry]
        return quiet_stats(rounds or cell["samples"][entry], s.quiet_keep)

    choose = {e: half(e, 1)["p50_us"] for e in names}
    best = min(names, key=choose.__getitem__)
    if not choose[best] < choose["defaults"] * (1 - s.tune_margin):
        best = "defaults"
    report = {e: half(e, 0) for e in cell["keys"]}
    return {
        "choice": best,
        "stats": {"onnxruntime": report[best], "torch": report["torch"]},
        "max_abs_diff": cell["max_abs_diff"][best],
        "options": cell["options"][best],
        "setup_ms": {"onnxruntime": cell["setup_ms"][best], "torch": cell["setup_ms"]["torch"]},
        "tuning": {"choice": best, "options": cell["options"][best], "choice_p50_us": choose,
                   "reported_p50_us": {e: report[e]["p50_us"] for e in names},
                   "speedup": report["defaults"]["p50_us"] / report[best]["p50_us"]},
    }


def prepare_cells(ort, tor, threads: int, models, artifacts: dict, s: Settings, work: Path, out: dict) -> list:
    """Tune every artifact (step 1), open the sessions and modules the cells need, list the cells."""
    cells = []
    for name in models:
        for part, art in artifacts[name].items():
            key = f"{name}/{part}"
            if s.tune:
                t1 = time.perf_counter()
                out["tuning"][key] = tune(ort, key, art, threads, s)
                out["tune_seconds"] += time.perf_counter() - t1
                candidates = out["tuning"][key]["finalists"]
            else:
                candidates = {"defaults": {**DEFAULT_OPTIONS, "intra_op_num_threads": threads}}
            # What onnxruntime's ORT_ENABLE_ALL optimiser makes of the graph (written once).
            optimized = work / "optimized" / f"{name}-{part}-{threads}.onnx"
            optimized.parent.mkdir(exist_ok=True)
            loaded = ort("load", key=key, path=art["path"], options=DEFAULT_OPTIONS, optimized_path=str(optimized))
            art.setdefault("optimized_ops", {})[str(threads)] = loaded["optimized_ops"]
            ort("drop", key=key)
            # One timed session per finalist; its creation time is the row's session creation time.
            keys, setup = {"torch": key}, {"torch": tor("load", key=key, run=art["run"], part=part)["setup_ms"]}
            for finalist, options in candidates.items():
                keys[finalist] = f"{key}#{finalist}"
                setup[finalist] = ort("load", key=keys[finalist], path=art["path"], options=options)["setup_ms"]
            for batch in s.batches:
                cells.append({"model": name, "part": part, "batch": batch, "threads": threads, "keys": keys,
                              "input": art["input"], "setup_ms": setup, "options": candidates,
                              "samples": {e: [] for e in keys}, "round_p50": {e: [] for e in keys}})
    return cells


def measure_threads(threads: int, models, artifacts: dict, s: Settings, work: Path, log=_log) -> dict:
    """Everything measured at one thread budget: tuning, references, and every cell.

    The machine's slow stretches can last seconds, longer than one cell takes; so the rounds of every
    cell are spread over ``s.passes`` passes over all the cells, and its quiet rounds found among them."""
    out = {"ceiling_ns": {rt: [] for rt in RUNTIMES}, "floor_ns": {rt: [] for rt in RUNTIMES},
           "tuning": {}, "tune_seconds": 0.0}
    with Worker("onnxruntime", threads, work) as ort, Worker("torch", threads, work) as tor:
        workers = {"onnxruntime": ort, "torch": tor}
        cells = prepare_cells(ort, tor, threads, models, artifacts, s, work, out)
        log(f"  {threads} thread(s): tuned and loaded {len(models)} models in {out['tune_seconds']:.1f} s")
        for visit in range(s.passes):
            t0 = time.perf_counter()
            # The references in every pass, so that a change of machine load reaches them too.
            for rt, w in workers.items():
                out["ceiling_ns"][rt] += w("matmul", n=s.ceiling_n, calls=s.ceiling_calls, warmup=visit == 0)["ns"]
                out["floor_ns"][rt] += w("floor", timing=s.timing(s.floor_s))["ns"]
            for cell in cells:
                measure_cell(workers, cell, visit, s, work)
            log(f"  {threads} thread(s): pass {visit + 1}/{s.passes} over every cell in "
                f"{time.perf_counter() - t0:.1f} s")
        out["worker_modules"] = {rt: w("modules")["modules"] for rt, w in workers.items()}
    for cell in cells:
        cell.update(settle(cell, s))
        if s.tune:
            out["tuning"][f"{cell['model']}/{cell['part']}"].setdefault("per_batch", {})[str(cell["batch"])] = \
                cell["tuning"]
    out["cells"] = cells
    return out


# --------------------------------------------------------------------------------------------------
# Results: rows, summaries, Markdown, plot, comparison with an earlier run.
# --------------------------------------------------------------------------------------------------


def _machine_helpers():
    """benchmarks/machine.py from the checkout (the house helper); a minimal stand-in elsewhere."""
    path = CHECKOUT / "benchmarks" / "machine.py"
    if path.is_file():
        spec = importlib.util.spec_from_file_location("zoo_benchmarks_machine", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.describe, module.slug, module.RESULTS

    def describe():
        return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                "platform": platform.platform(), "gpu": None, "date": datetime.date.today().isoformat()}

    def slug(info):
        return "-".join(filter(None, "".join(c if c.isalnum() else "-" for c in info["cpu"].lower()).split("-")))[:40]

    return describe, slug, Path.cwd() / "benchmark-results"


def versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__,
             "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__, "numpy": np.__version__}
    with contextlib.suppress(ImportError):
        import onnxscript

        found["onnxscript"] = onnxscript.__version__
    return found


def build_rows(measured: list, artifacts: dict, ceilings: dict, floors: dict) -> list:
    rows = []
    for cell in measured:
        art = artifacts[cell["model"]][cell["part"]]
        t = cell["threads"]
        stats = cell["stats"]
        ratio = stats["torch"]["p50_us"] / stats["onnxruntime"]["p50_us"]
        for rt in RUNTIMES:
            sps = cell["batch"] / (stats[rt]["p50_us"] / 1e6)
            gflops = art["flops_per_sample"] * sps / 1e9
            rows.append({
                "model": cell["model"], "part": cell["part"], "runtime": rt, "batch": cell["batch"], "threads": t,
                **stats[rt],
                "samples_per_second": sps,
                "gflops": gflops,
                "ceiling_fraction": gflops / ceilings[str(t)],
                "max_abs_diff": cell["max_abs_diff"],
                "torch_over_onnxruntime": ratio,
                "floor_multiple": stats[rt]["p50_us"] / floors[str(t)][rt],
                "setup_ms": cell["setup_ms"][rt],
                "file_bytes": art["file_bytes"],
                "flops_per_sample": art["flops_per_sample"],
                **({"options": cell["options"], "tuning_choice": cell["choice"]} if rt == "onnxruntime"
                   else {"options": {"inference_mode": True, "num_threads": t}}),
            })
    return rows


def tuning_summary(tuning: dict) -> dict:
    """Per batch size: which finalist won how often and the gain over the defaults; and which
    session-option values the one-knob-at-a-time search kept where its result was used."""
    by_batch, wins = {}, {}
    for entry in tuning.values():
        used = False
        for batch, pick in entry["per_batch"].items():
            summary = by_batch.setdefault(batch, {"choices": {}, "speedups": []})
            summary["choices"][pick["choice"]] = summary["choices"].get(pick["choice"], 0) + 1
            summary["speedups"].append(pick["speedup"])
            used = used or pick["choice"] != "defaults"
        if used:
            for knob, value in entry["changed"].items():
                wins[f"{knob}={value}"] = wins.get(f"{knob}={value}", 0) + 1
    return {
        "artifacts_tuned": len(tuning),
        "knob_values_kept": wins,
        "by_batch": {b: {"choices": v["choices"], "geomean_speedup": _geomean(v["speedups"]),
                         "max_speedup": max(v["speedups"])} for b, v in by_batch.items()},
    }


def compare(old: dict, rows: list, tolerance: float = 0.15) -> dict:
    """Each cell's torch/onnxruntime ratio against the same cell of an earlier result."""
    def ratios(rs):
        return {(r["model"], r["part"], r["batch"], r["threads"]): r["torch_over_onnxruntime"]
                for r in rs if r["runtime"] == "onnxruntime"}

    before, now = ratios(old.get("rows", [])), ratios(rows)
    changes = {k: now[k] / before[k] - 1 for k in now if k in before}
    if not changes:
        return {"cells": 0, "note": "no cell in common with the earlier result"}
    worst = sorted(changes.items(), key=lambda kv: -abs(kv[1]))
    within = sum(abs(c) <= tolerance for c in changes.values())
    return {
        "against": old.get("file", ""),
        "tolerance": tolerance,
        "cells": len(changes),
        "within_tolerance": within,
        "fraction_within": within / len(changes),
        "median_abs_change": float(np.median([abs(c) for c in changes.values()])),
        "by_batch": {str(b): float(np.median([abs(c) for k, c in changes.items() if k[2] == b]))
                     for b in sorted({k[2] for k in changes})},
        "worst": [{"model": k[0], "part": k[1], "batch": k[2], "threads": k[3], "change": c} for k, c in worst[:8]],
    }


def _fmt(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def markdown(result: dict) -> str:
    m, v, rows = result["machine"], result["versions"], result["rows"]
    threads = sorted({r["threads"] for r in rows})
    by = {(r["model"], r["part"], r["runtime"], r["batch"], r["threads"]): r for r in rows}
    cells = sorted({(r["model"], r["part"], r["batch"], r["threads"]) for r in rows},
                   key=lambda k: (k[0], PARTS.index(k[1]) if k[1] in PARTS else 9, k[3], k[2]))
    small, large = min(r["batch"] for r in rows), max(r["batch"] for r in rows)
    lines = [
        "# onnxruntime against PyTorch eager: inference latency and throughput",
        "",
        f"{m['cpu']}, {m['cores']} cores; torch {v['torch']}, onnxruntime {v['onnxruntime']}, onnx {v['onnx']}; "
        f"{m['date']}; mode: {result['mode']}. Load average {result['load_average']['start']} at the start, "
        f"{result['load_average']['end']} at the end.",
        "",
        "Same inputs, the same thread budget on both sides, separate worker processes taking turns; p50 of "
        "the timed calls after warm-up (rounds disturbed by other load dropped, see the notes). `torch/ORT` > 1 "
        "means onnxruntime is faster. The ceiling is "
        "the faster of the two libraries' large square matmuls at the same thread count.",
        "",
        "| threads | fp32 matmul ceiling, GFLOP/s (torch.matmul / onnxruntime MatMul, "
        f"{result['settings']['ceiling_n']}^2) | floor: onnxruntime Identity p50 (us) | floor: torch Linear p50 (us) |",
        "|---:|---:|---:|---:|",
        *[f"| {t} | {result['ceiling_gflops_by_threads'][str(t)]:.1f} "
          f"({result['ceiling_sources'][str(t)]['torch']:.1f} / "
          f"{result['ceiling_sources'][str(t)]['onnxruntime']:.1f}) | "
          f"{result['floors'][str(t)]['onnxruntime_identity_p50_us']:.2f} | "
          f"{result['floors'][str(t)]['torch_linear_p50_us']:.2f} |" for t in threads],
        "",
        f"## Batch {small}: latency",
        "",
        "| model | part | threads | ORT p50 us | ORT p99 us | torch p50 us | torch p99 us | torch/ORT | ORT / floor | "
        "ORT - floor us | ORT intra-op threads |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, part, batch, t in cells:
        if batch != small:
            continue
        o, p = by[(model, part, "onnxruntime", batch, t)], by[(model, part, "torch", batch, t)]
        floor = result["floors"][str(t)]["onnxruntime_identity_p50_us"]
        lines.append(f"| {model} | {part} | {t} | {_fmt(o['p50_us'])} | {_fmt(o['p99_us'])} | {_fmt(p['p50_us'])} | "
                     f"{_fmt(p['p99_us'])} | {o['torch_over_onnxruntime']:.2f}x | {o['floor_multiple']:.1f}x | "
                     f"{_fmt(o['p50_us'] - floor)} | {o['options']['intra_op_num_threads']} |")
    lines += [
        "",
        f"## Batch {large}: throughput and the matmul ceiling",
        "",
        "| model | part | threads | ORT samples/s | torch samples/s | torch/ORT | ORT GFLOP/s | ORT % ceiling | "
        "torch % ceiling |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, part, batch, t in cells:
        if batch != large:
            continue
        o, p = by[(model, part, "onnxruntime", batch, t)], by[(model, part, "torch", batch, t)]
        lines.append(f"| {model} | {part} | {t} | {_fmt(o['samples_per_second'])} | {_fmt(p['samples_per_second'])} | "
                     f"{o['torch_over_onnxruntime']:.2f}x | {_fmt(o['gflops'])} | {100 * o['ceiling_fraction']:.0f}% | "
                     f"{100 * p['ceiling_fraction']:.0f}% |")
    tuning = result.get("tuning", {})
    if tuning.get("artifacts"):
        summary, settings = tuning["summary"], result["settings"]
        kept = ", ".join(f"{k} ({n}x)" for k, n in sorted(summary["knob_values_kept"].items())) or "none"
        lines += [
            "",
            "## Tuning onnxruntime's session options",
            "",
            f"Defaults: {', '.join(f'{k}={v}' for k, v in DEFAULT_OPTIONS.items())}, intra-op threads = the "
            f"budget. Step 1, one knob at a time at batches {', '.join(map(str, settings['tune_batches']))}: a value "
            f"is kept when faster by more than {100 * settings['tune_margin']:.0f}% (values kept, where used: {kept}). "
            "Step 2, per batch size, inside the measurement itself: the defaults, the tuned options and (budget "
            "> 1) the tuned options on one intra-op thread all take their turns in every round; the odd rounds "
            "choose (the defaults stay unless beaten by the same margin), the even rounds give the reported "
            "figures and the gain over the defaults, so no choice is judged on the samples that made it.",
            "",
            "| batch | chose defaults | chose tuned | chose tuned, 1 thread | gain over defaults (geomean) | "
            "best gain |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for batch, b in sorted(summary["by_batch"].items(), key=lambda kv: int(kv[0])):
            c = b["choices"]
            lines.append(f"| {batch} | {c.get('defaults', 0)} | {c.get('tuned', 0)} | {c.get('tuned, 1 thread', 0)} | "
                         f"{b['geomean_speedup']:.2f}x | {b['max_speedup']:.2f}x |")
        lines += ["", f"| artifact | threads | tuned options (changes) | batch {small}: choice, gain | "
                      f"batch {large}: choice, gain |", "|---|---:|---|---|---|"]
        for key, entry in sorted(tuning["artifacts"].items()):
            artifact, t = key.rsplit("@", 1)
            changed = ", ".join(f"{k}={v}" for k, v in entry["changed"].items()) or "defaults"
            picks = [entry["per_batch"][str(b)] for b in (small, large)]
            lines.append(f"| {artifact} | {t} | {changed} | " + " | ".join(
                f"{p['choice']}, {p['speedup']:.2f}x" for p in picks) + " |")
    rep = result.get("reproducibility")
    if rep and rep.get("cells"):
        lines += ["", "## Against an earlier run", "",
                  f"{rep['within_tolerance']} of {rep['cells']} cells' torch/ORT ratios within "
                  f"{100 * rep['tolerance']:.0f}% of {rep['against']}; median change "
                  f"{100 * rep['median_abs_change']:.1f}%."]
    lines += [
        "",
        "## All cells",
        "",
        "| model | part | batch | threads | ORT p50 / p90 / p99 us | torch p50 / p90 / p99 us | torch/ORT | "
        "ORT samples/s | torch samples/s | ORT GFLOP/s (% ceiling) | torch GFLOP/s (% ceiling) | max abs diff |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, part, batch, t in cells:
        o, p = by[(model, part, "onnxruntime", batch, t)], by[(model, part, "torch", batch, t)]
        lines.append(
            f"| {model} | {part} | {batch} | {t} | {_fmt(o['p50_us'])} / {_fmt(o['p90_us'])} / {_fmt(o['p99_us'])} | "
            f"{_fmt(p['p50_us'])} / {_fmt(p['p90_us'])} / {_fmt(p['p99_us'])} | {o['torch_over_onnxruntime']:.2f}x | "
            f"{_fmt(o['samples_per_second'])} | {_fmt(p['samples_per_second'])} | {_fmt(o['gflops'])} "
            f"({100 * o['ceiling_fraction']:.0f}%) | {_fmt(p['gflops'])} ({100 * p['ceiling_fraction']:.0f}%) | "
            f"{o['max_abs_diff']:.1e} |")
    lines += ["", "## Artifacts", "",
              "| artifact | file bytes | FLOPs / sample | session creation ms (threads: ms) | ONNX ops |",
              "|---|---:|---:|---|---|"]
    for model, parts in result["artifacts"].items():
        for part, art in parts.items():
            setup = ", ".join(f"{t}: {ms:.1f}" for t, ms in art["session_create_ms"].items())
            lines.append(f"| {model}/{part} | {art['file_bytes']:,} | {art['flops_per_sample']:,} | {setup} | "
                         f"{' '.join(art['ops'])} |")
    lines += ["", "## Notes", "", *[f"- {n}" for n in result["notes"]], ""]
    return "\n".join(lines)


def plot(result: dict, path) -> None:
    """Samples/s against batch size: one panel per model and thread count; colour = part,
    solid = onnxruntime, dashed = PyTorch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    models = list(result["artifacts"])
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(len(threads), len(models), figsize=(3.4 * len(models), 3.0 * len(threads)),
                             squeeze=False, sharex=True)
    colours = dict(zip(PARTS, ("tab:blue", "tab:orange", "tab:green")))
    for i, t in enumerate(threads):
        for j, model in enumerate(models):
            ax = axes[i][j]
            for part in result["artifacts"][model]:
                for rt, style in (("onnxruntime", "-"), ("torch", "--")):
                    pts = sorted((r["batch"], r["samples_per_second"]) for r in rows
                                 if r["model"] == model and r["part"] == part and r["runtime"] == rt
                                 and r["threads"] == t)
                    if pts:
                        ax.plot(*zip(*pts), style, marker="o", ms=3, color=colours.get(part),
                                label=f"{part} {'ORT' if rt == 'onnxruntime' else 'torch'}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{model}, {t} thread{'s' if t > 1 else ''}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            if i == len(threads) - 1:
                ax.set_xlabel("batch size")
            if j == 0:
                ax.set_ylabel("samples / s")
    axes[0][0].legend(fontsize=6, loc="best")
    fig.suptitle(f"onnxruntime (solid) vs PyTorch eager (dashed), {result['machine']['cpu']}, "
                 f"{result['machine']['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


@contextlib.contextmanager
def terminate_cleanly():
    """SIGTERM ends the run like Ctrl-C does: the workers are told to quit and the temporary folder
    (run folders, exports, inputs) is removed, instead of being left behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def one_at_a_time(wait: bool, log=_log):
    """Two benchmark runs on one machine spoil each other's numbers: hold a lock for the run's length.
    A full run waits for another to finish; a --quick smoke run goes ahead and says so. Yields
    whether this run had the machine's benchmarks to itself."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks here: nothing to coordinate with
        yield True
        return
    path = Path(tempfile.gettempdir()) / "zoo-bench.lock"
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            if not wait:
                log(f"another zoo bench (pid {holder}) is running; this --quick run goes ahead, its numbers disturbed")
                yield False
                return
            log(f"waiting for another zoo bench (pid {holder}) to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
            alone = True
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield alone
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load_average() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_benchmark(models=None, quick=False, out_dir=None, threads=None, batches=None, tune=None,
                  compare_with=None, log=_log) -> dict:
    """Measure, write ``<out_dir>/inference-<machine>-<date>.{json,md,png}`` and return
    ``{"result": ..., "json": path, "markdown": path, "plot": path}``."""
    describe, slug, results_dir = _machine_helpers()
    names = resolve_models(models)
    cores = os.cpu_count() or 1
    changes = {}
    if threads:
        changes["threads"] = tuple(sorted(set(threads)))
    if batches:
        changes["batches"] = tuple(sorted(set(batches)))
    if tune is not None:
        changes["tune"] = tune
    s = Settings.quick(**changes) if quick else Settings(**changes)
    if not s.threads:
        s = dataclasses.replace(s, threads=tuple(sorted({1, cores})))
    if any(t < 1 for t in s.threads) or any(b < 1 for b in s.batches):
        raise ZooError("thread counts and batch sizes must be positive")
    old = None
    if compare_with:
        try:
            old = {**json.loads(Path(compare_with).read_text()), "file": str(compare_with)}
        except (OSError, ValueError) as exc:
            raise ZooError(f"--compare {compare_with}: cannot read it as a benchmark result ({exc})") from None

    with terminate_cleanly(), one_at_a_time(wait=not quick, log=log) as alone, \
            tempfile.TemporaryDirectory(prefix="zoo-bench-") as work:
        load_start = _load_average()
        started = time.perf_counter()
        log(f"zoo bench: {', '.join(names)}; batches {list(s.batches)}; threads {list(s.threads)}; "
            f"{'quick' if quick else 'full'} mode; load average {load_start}")
        work = Path(work)
        artifacts = prepare(names, work, max(s.batches), log)
        phases = {"prepare": time.perf_counter() - started}
        measured = {}
        for t in s.threads:
            t0 = time.perf_counter()
            measured[t] = measure_threads(t, names, artifacts, s, work, log)
            phases[f"measure_{t}_threads"] = time.perf_counter() - t0

    # The fastest of all the timed products: noise only ever slows a call down, and a 0.1 s product on
    # a shared machine is often caught by another process, which a ceiling should not count.
    sources = {str(t): {rt: 2 * s.ceiling_n ** 3 / min(m["ceiling_ns"][rt]) for rt in RUNTIMES}
               for t, m in measured.items()}  # GFLOP/s: FLOPs per ns
    ceilings = {t: max(per.values()) for t, per in sources.items()}
    floors = {str(t): {rt: percentiles(m["floor_ns"][rt])["p50_us"] for rt in RUNTIMES} for t, m in measured.items()}
    rows = build_rows([c for m in measured.values() for c in m["cells"]], artifacts, ceilings, floors)
    tuning = {f"{k}@{t}": v for t, m in measured.items() for k, v in m["tuning"].items()}
    for name in names:
        for part, art in artifacts[name].items():
            art["session_create_ms"] = {str(r["threads"]): r["setup_ms"] for r in rows
                                        if r["model"] == name and r["part"] == part and r["runtime"] == "onnxruntime"}
            art["torch_load_ms"] = {str(r["threads"]): r["setup_ms"] for r in rows
                                    if r["model"] == name and r["part"] == part and r["runtime"] == "torch"}
            for key in ("run", "path", "input"):
                art.pop(key)
    ort_imports_torch = any(m.split(".")[0] == "torch" for t in measured
                            for m in measured[t]["worker_modules"]["onnxruntime"])
    load_end = _load_average()
    machine = describe()
    busy = load_start and max(load_start[0], load_end[0] if load_end else 0) > 0.5 * cores
    gpu = (f"this machine has {machine['gpu']}, but this benchmark times the CPU only" if machine.get("gpu")
           else "no GPU was available to this run; every figure is CPU only")
    notes = [
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
        f"{'imported torch (unexpected)' if ort_imports_torch else 'never imports torch'}.",
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
        notes.append(f"The machine was shared while this ran (load average {load_start} at the start, {load_end} at "
                     f"the end, on {cores} cores): absolute times are pessimistic and noisier than on an idle "
                     "machine; ratios were taken side by side, so they suffer less.")
    if quick:
        notes.append("--quick: a smoke run with very few calls per cell; its numbers are not for reading.")
    if not alone:
        notes.append("Another zoo bench was running on this machine at the same time: both runs' numbers are "
                     "disturbed.")
    if not s.tune:
        notes.append("onnxruntime ran with the default options (no tuning in this run).")

    result = {
        "benchmark": STEM,
        "machine": machine,
        "versions": versions(),
        "ceiling_gflops": ceilings[str(max(s.threads))],
        "ceiling_gflops_by_threads": ceilings,
        "ceiling_sources": sources,
        "floors": {t: {"onnxruntime_identity_p50_us": f["onnxruntime"], "torch_linear_p50_us": f["torch"]}
                   for t, f in floors.items()},
        "rows": rows,
        "mode": "quick" if quick else "full",
        "settings": {**dataclasses.asdict(s), "default_options": DEFAULT_OPTIONS},
        "artifacts": artifacts,
        "tuning": {"artifacts": tuning, "summary": tuning_summary(tuning)} if tuning else {},
        "load_average": {"start": load_start, "end": load_end},
        "seconds": time.perf_counter() - started,
        "phase_seconds": phases,
        "notes": notes,
        "onnxruntime_worker_imported_torch": ort_imports_torch,
    }
    if old is not None:
        result["reproducibility"] = compare(old, rows)
    return write(result, Path(out_dir) if out_dir else results_dir, slug)


def write(result: dict, out_dir: Path, slug) -> dict:
    from zoo.atomic import atomic_write, atomic_write_text, write_json

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create output folder {out_dir} ({exc.strerror})") from None
    base = out_dir / f"{STEM}-{slug(result['machine'])}-{result['machine']['date']}"
    paths = {"json": base.with_suffix(".json"), "markdown": base.with_suffix(".md"), "plot": base.with_suffix(".png")}
    write_json(paths["json"], result)
    atomic_write_text(paths["markdown"], markdown(result))
    atomic_write(paths["plot"], lambda tmp: plot(result, tmp))
    umask = os.umask(0)  # the atomic writes leave mkstemp's 0600; results are meant to be shared
    os.umask(umask)
    for path in paths.values():
        os.chmod(path, 0o666 & ~umask)
    return {"result": result, **paths}


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main(sys.argv)
    else:
        print("usage: zoo bench [MODELS...] [--quick]  (this module's own entry point is for its workers)",
              file=sys.stderr)
        sys.exit(2)
