"""The onnxruntime side of the worker protocol. Never imports torch: onnxruntime's numbers must not
include a second library's threads or memory, and `zoo sample` users may not have torch at all.
"""

import contextlib
import time

import numpy as np

from zoo.export.bench.settings import DEFAULT_OPTIONS, FLOOR_WIDTH, SEED
from zoo.export.bench.timing import time_calls

FLOOR_KEY = "__floor__"


def session_options(threads: int, options: dict, optimized_path=None):
    """``threads`` is the budget; ``options["intra_op_num_threads"]`` (when set) may use fewer."""
    import onnxruntime

    so = onnxruntime.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = min(options.get("intra_op_num_threads") or threads, threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, options["graph_optimization_level"])
    so.execution_mode = getattr(onnxruntime.ExecutionMode, options["execution_mode"])
    spin = "1" if options["allow_spinning"] else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.add_session_config_entry("session.set_denormal_as_zero", "1" if options["denormal_as_zero"] else "0")
    if optimized_path:
        so.optimized_model_filepath = str(optimized_path)
    return so


def _one_node_model(op: str, inputs: list, shape: list):
    """A graph of a single ``op`` node over float tensors of ``shape``, output "y"."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"])],
        op.lower(),
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


class OrtBackend:
    """Sessions of the exported artifacts, by key, all with this worker's thread budget."""

    def __init__(self, threads: int):
        import onnxruntime

        self.onnxruntime, self.threads = onnxruntime, threads
        self.sessions = {}  # key -> (session, input name, output names)

    def _session(self, model, options: dict):
        return self.onnxruntime.InferenceSession(
            model, session_options(self.threads, options), providers=["CPUExecutionProvider"]
        )

    def context(self):
        return contextlib.nullcontext()

    def load(self, key, path, options, optimized_path=None) -> dict:
        so = session_options(self.threads, options, optimized_path)
        t0 = time.perf_counter_ns()
        session = self.onnxruntime.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        setup_ms = (time.perf_counter_ns() - t0) / 1e6
        self.sessions[key] = (session, session.get_inputs()[0].name, [o.name for o in session.get_outputs()])
        reply = {"setup_ms": setup_ms}
        if optimized_path:
            import onnx

            reply["optimized_ops"] = [n.op_type for n in onnx.load(str(optimized_path)).graph.node]
        return reply

    def drop(self, key) -> None:
        self.sessions.pop(key, None)

    def call(self, key, x):
        session, name, outputs = self.sessions[key]
        feed = {name: x}
        return lambda: session.run(outputs, feed)

    def outputs(self, key, x) -> list:
        return list(self.call(key, x)())

    def floor(self):
        """One call on a graph that does nothing: the fixed cost of session.run from Python."""
        if FLOOR_KEY not in self.sessions:
            model = _one_node_model("Identity", ["x"], ["batch", FLOOR_WIDTH])
            self.sessions[FLOOR_KEY] = (self._session(model, DEFAULT_OPTIONS), "x", ["y"])
        return self.call(FLOOR_KEY, np.zeros((1, FLOOR_WIDTH), np.float32))

    def matmul(self, n: int, calls: int, warmup: bool = True) -> list:
        """The same square product as the torch worker's, through onnxruntime's MatMul (MLAS)."""
        session = self._session(_one_node_model("MatMul", ["a", "b"], [n, n]), DEFAULT_OPTIONS)
        rng = np.random.default_rng(SEED)
        feed = {k: rng.standard_normal((n, n), dtype=np.float32) for k in ("a", "b")}
        return time_calls(lambda: session.run(["y"], feed), warmup_calls=int(warmup), calls=calls)
