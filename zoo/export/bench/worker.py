"""A worker process: one runtime at one thread budget, driven by JSON lines on stdin, one reply line
on stdout per request. The orchestrator starts it as

    python -m zoo.export.bench.worker --runtime onnxruntime|torch --threads T

(see worker_client.py). Requests: load, drop, time, floor, matmul, modules, quit. A failure becomes
an ``{"error": ...}`` reply, which the orchestrator raises as a ZooError.

Nothing imports this module: ``python -m`` runs it as __main__, and the onnxruntime worker must not
import torch, so it imports only the backend it runs.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np

from zoo.core.errors import first_line
from zoo.export.bench.timing import time_calls

WATCHED_LIBRARIES = ("torch", "onnxruntime")  # reported by the "modules" request


def serve(backend, requests, replies) -> None:
    inputs = {}  # input file -> its array, loaded once

    def batch_of(path, batch):
        if path not in inputs:
            inputs[path] = np.load(path)
        return np.ascontiguousarray(inputs[path][:batch])

    for line in requests:
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op == "quit":
                return
            if op == "load":
                reply = backend.load(**request)
            elif op == "drop":
                backend.drop(request["key"])
                reply = {}
            elif op == "time":
                x = batch_of(request["input"], request["batch"])
                if request.get("save"):  # the outputs for the accuracy check; also a first warm-up call
                    np.savez(request["save"], *backend.outputs(request["key"], x))
                fn = backend.call(request["key"], x)
                with backend.context():
                    reply = {"ns": time_calls(fn, **request["timing"])}
            elif op == "floor":
                fn = backend.floor()
                with backend.context():
                    reply = {"ns": time_calls(fn, **request["timing"])}
            elif op == "matmul":
                reply = {"ns": backend.matmul(request["n"], request["calls"], request.get("warmup", True))}
            elif op == "modules":
                reply = {"modules": sorted(m for m in sys.modules if m.split(".")[0] in WATCHED_LIBRARIES)}
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # reported to the orchestrator, which raises it as a ZooError
            reply = {"error": f"{op}: {type(exc).__name__}: {first_line(exc, 300)}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def make_backend(runtime: str, threads: int):
    if runtime == "onnxruntime":
        from zoo.export.bench.ort_backend import OrtBackend

        return OrtBackend(threads)
    from zoo.export.bench.torch_backend import TorchBackend

    return TorchBackend(threads)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.export.bench.worker", description="A zoo bench worker (started by `zoo bench`)."
    )
    parser.add_argument("--runtime", choices=("onnxruntime", "torch"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    backend = make_backend(args.runtime, args.threads)
    replies.write(json.dumps({"ready": args.runtime, "threads": args.threads}) + "\n")
    replies.flush()
    serve(backend, sys.stdin, replies)


if __name__ == "__main__":
    main()
