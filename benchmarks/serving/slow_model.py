"""A model slow enough to overrun `zoo serve`: the VAE generator's interface (eps [N, 20] -> x_hat
[N, 1, 28, 28], the same zoo.* metadata) around a loop of matrix products whose length is calibrated
to a wanted number of seconds per call on this machine. The overload tests and serve_hostile
serve it."""

import json
import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper


def slow_generator(generator, folder, iterations: int):
    """``folder/generator.onnx``: eps [N, 20] -> x_hat [N, 1, 28, 28] (eps padded with zeros), plus
    0 times the sum of ``iterations`` products of a 384 x 384 matrix, started from eps so that nothing
    can be computed ahead of the call."""
    model = onnx.load(generator)
    (source,), (target,) = model.graph.input, model.graph.output
    size = 384
    # Scaled so that the state stays near 1 under Tanh: shrinking towards 0 it would turn subnormal,
    # and subnormal products run tens of times slower, which no calibration could follow.
    weights = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32) * (1.5 / size**0.5)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state", "w"], ["product"]),
            helper.make_node("Tanh", ["product"], ["next"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "spin",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [size, size]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("next", TensorProto.FLOAT, [size, size]),
        ],
    )
    nodes = [
        helper.make_node("ReduceMean", [source.name], ["mean"], keepdims=0),
        helper.make_node("Mul", ["w", "mean"], ["start"]),
        helper.make_node("Loop", ["trips", "yes", "start"], ["spun"], body=body),
        helper.make_node("ReduceSum", ["spun"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Pad", [source.name, "pads"], ["padded"]),
        helper.make_node("Reshape", ["padded", "shape"], ["image"]),
        helper.make_node("Add", ["image", "nothing"], [target.name]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow_generator",
        [source],
        [target],
        [
            helper.make_tensor("w", TensorProto.FLOAT, [size, size], weights.reshape(-1)),
            helper.make_tensor("trips", TensorProto.INT64, [], [iterations]),
            helper.make_tensor("yes", TensorProto.BOOL, [], [True]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("pads", TensorProto.INT64, [4], [0, 0, 0, 784 - 20]),
            helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 28, 28]),
        ],
    )
    slow = helper.make_model(graph, opset_imports=model.opset_import)
    slow.metadata_props.extend(model.metadata_props)
    folder.mkdir(exist_ok=True)
    onnx.save(slow, folder / "generator.onnx")
    return folder / "generator.onnx"


def seconds_per_call(path) -> float:
    """The fastest of five calls, at one thread as the server runs it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    eps = np.ones((1, 20), np.float32)
    session.run(None, {"eps": eps})
    times = []
    for _ in range(5):
        started = time.perf_counter()
        session.run(None, {"eps": eps})
        times.append(time.perf_counter() - started)
    return min(times)


def calibrated(generator, folder, seconds: float) -> tuple:
    """(the slow generator's path, its seconds per call), the call made to take about ``seconds``."""
    iterations = 32
    for _ in range(2):  # twice: the first measure of a short loop is rough
        path = slow_generator(generator, folder, iterations)
        iterations = max(8, round(iterations * seconds / seconds_per_call(path)))
    path = slow_generator(generator, folder, iterations)
    return path, seconds_per_call(path)


def overrun(url: str, clients: int, seconds: float, pause_after_503: float = 0.0) -> dict:
    """``clients`` threads each asking the slow generator again as soon as answered (after a 503,
    once ``pause_after_503`` s have passed) for ``seconds``: {status as text: count}."""
    import httpx

    counts, lock = {}, threading.Lock()
    body = json.dumps({"inputs": [{"name": "eps", "shape": [1, 20], "datatype": "FP32", "data": [1.0] * 20}]})
    deadline = time.monotonic() + seconds

    def client():
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < deadline:
                status = http.post("/v2/models/slow-generator/infer", content=body).status_code
                with lock:
                    counts[str(status)] = counts.get(str(status), 0) + 1
                if status == 503:
                    time.sleep(pause_after_503)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts
