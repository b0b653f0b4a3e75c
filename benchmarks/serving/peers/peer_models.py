"""The code each peer server runs for the benchmark (serve_peers.py): the same VAE generator file in
onnxruntime with one intra-op thread, as Triton's Python backend, a KServe model server and an MLServer
custom runtime. Kept as source text: each is written into the peer's own folder and run there, in the
peer's own Python."""

# Triton's Python backend: a TritonPythonModel running the same file with onnxruntime, batching the
# requests Triton's dynamic batcher hands it in one call.
TRITON_PYTHON_MODEL = """import os
import sys

# The stub's embedded interpreter runs isolated and ignores PYTHONPATH: add it by hand, before numpy.
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]

import json  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        threads = int(config["parameters"]["intra_op_thread_count"]["string_value"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input, self.output = self.session.get_inputs()[0].name, self.session.get_outputs()[0].name

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        rows = self.session.run(None, {self.input: np.concatenate(arrays) if len(arrays) > 1 else arrays[0]})[0]
        answers, start = [], 0
        for array in arrays:
            answers.append(pb_utils.InferenceResponse([pb_utils.Tensor(self.output, rows[start:start + len(array)])]))
            start += len(array)
        return answers
"""

TRITON_PYTHON_CONFIG = """name: "{name}"
backend: "python"
max_batch_size: {max_batch}
input {{ name: "{input}" data_type: TYPE_FP32 dims: {input_dims} }}
output {{ name: "{output}" data_type: TYPE_FP32 dims: {output_dims} }}
dynamic_batching {{ }}
instance_group [{{ count: 1, kind: KIND_CPU }}]
parameters {{ key: "intra_op_thread_count" value {{ string_value: "1" }} }}
"""

KSERVE_SERVER = '''"""KServe's model server running onnxruntime on one file: python kserve_server.py NAME FILE PORT."""
import sys

name, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
del sys.argv[1:]  # kserve parses the command line when it is imported

import logging  # noqa: E402

import kserve  # noqa: E402
import onnxruntime as ort  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferResponse  # noqa: E402
from kserve.protocol.rest import server as rest  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402


class Generator(kserve.Model):
    def load(self):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input, self.output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.ready = True
        return True

    def get_input_types(self):
        return [{"name": self.input.name, "datatype": "FP32", "shape": [-1, *self.input.shape[1:]]}]

    def get_output_types(self):
        return [{"name": self.output.name, "datatype": "FP32", "shape": [-1, *self.output.shape[1:]]}]

    def predict(self, payload, headers=None):
        rows = self.session.run(None, {self.input.name: payload.inputs[0].as_numpy()})[0]
        out = InferOutput(name=self.output.name, shape=list(rows.shape), datatype="FP32", data=rows)
        return InferResponse(payload.id or generate_uuid(), self.name, [out],
                             use_binary_outputs=payload.use_binary_outputs)


# KServe binds 0.0.0.0; every server in the benchmark listens on loopback only.
_init = rest.RESTServer.__init__


def _loopback(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.config.host = "127.0.0.1"


rest.RESTServer.__init__ = _loopback

if __name__ == "__main__":
    model = Generator(name)
    model.load()
    server = kserve.ModelServer(http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False)
    # After the server has set up logging: no line per request, as zoo serve --quiet.
    for logger in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    server.start([model])
'''

MLSERVER_RUNTIME = '''"""MLServer's custom runtime for the benchmark: onnxruntime on one file, one intra-op thread."""
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class Generator(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        self.input, self.output = self.session.get_inputs()[0].name, self.session.get_outputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = self.session.run(None, {self.input: NumpyCodec.decode_input(payload.inputs[0])})[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output(self.output, rows)])
'''
