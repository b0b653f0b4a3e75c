"""The inference request and response of the Open Inference Protocol (KServe v2 REST), with Triton's
binary tensor data extension.

A request body is a JSON object, optionally followed by raw tensor bytes. The header
``Inference-Header-Content-Length`` gives the JSON part's length when bytes follow; an input with
the parameter ``binary_data_size`` takes its data from those bytes, in order. ``binary_data_output``
(for the whole request) or ``binary_data`` (per output) asks for outputs as bytes after the JSON
answer. A header length of 0 means the body is nothing but the one input's bytes, for one row.

Everything wrong with a request is a ``ProtocolError`` with the message the client gets back, and
every error the server sends is ``{"error": message}`` (``error_body``).

Text: a request is UTF-8 JSON (RFC 8259). A string that is not valid UTF-8 text (a lone surrogate
escape such as ``"\\ud800"``, which JSON's syntax allows but no UTF-8 can encode) is refused with a
400 that names the field, wherever it stands: the answer echoes ``id``, and an answer must be valid
UTF-8 JSON too.

Memory: ``parse_cost`` bounds what parsing a body costs in Python objects before it is parsed, and
``InferRequest.answer_bytes`` what its answer can take, so that the server can count both against
its memory budget.
"""

import json
import math
from dataclasses import dataclass

import numpy as np
import orjson

HEADER_LENGTH = "inference-header-content-length"
HEADER_LENGTH_BYTES = HEADER_LENGTH.encode()
FLOAT32_LE = np.dtype("<f4")
# How each output datatype travels, in JSON (orjson writes the array) and in binary: FP32 as 4 bytes
# little-endian, BOOL (a scorer's ``anomalous``) as one byte each, 0 or 1, as Triton sends it.
OUTPUT_DTYPES = {"FP32": FLOAT32_LE, "BOOL": np.dtype(np.bool_)}
JSON_BYTES_PER_VALUE = 16  # "-1.2345678e-38," is 15: the longest float32 orjson writes, with its comma
MAX_DEPTH = 1024  # orjson's nesting limit
# A client may write float64s: Python's repr takes up to 24 characters ("-2.2250738585072014e-308"),
# and ", " follows each. Nested lists add a few brackets per row.
REQUEST_BYTES_PER_VALUE = 32
HEADER_ALLOWANCE = 64 * 1024  # the JSON around the values: names, shape, parameters, an id


# Parsing JSON numbers costs per value a Python float (24 bytes) and its list slot (8), then the
# float64 array numpy makes of the list (8) and its float32 copy (4): 44 bytes. A value takes at least
# two bytes of the body ("0,"), so a body's values are at most half its length; past SMALL_JSON bytes
# they are counted (every value but the last is followed by a comma), which costs a millisecond per
# 2 MB and bounds the cost tightly for the large bodies where the bound matters.
PARSE_BYTES_PER_VALUE = 44
SMALL_JSON = 64 * 1024


class ProtocolError(ValueError):
    """A malformed or unsuitable request: HTTP 400 with this message."""


def error_body(message: str) -> bytes:
    """``{"error": message}``: the one form of every error the server sends, as the protocol asks.
    A message that quotes a client's text holding a lone surrogate is written with it escaped
    (``\\ud800``), so that the body is always valid UTF-8 JSON."""
    try:
        return orjson.dumps({"error": message})
    except orjson.JSONEncodeError:
        return orjson.dumps({"error": message.encode("utf-8", "backslashreplace").decode("utf-8")})


@dataclass
class InferRequest:
    id: str | None
    batch: np.ndarray  # float32 [rows, *input shape]
    outputs: list  # [(output name, as binary?)] in the order to answer
    answer_bytes: int = 0  # the most bytes the answer can take (answer_bound)


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    return value


def _flag(parameters: dict, key: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"parameter {key} must be true or false, got {value!r}")
    return value


def _split_body(body: bytes, header_length) -> tuple:
    """(JSON header bytes, the binary bytes after it)."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise ProtocolError(f"Inference-Header-Content-Length must be an integer, got {header_length!r}") from None
    if not 0 <= length <= len(body):
        raise ProtocolError(f"Inference-Header-Content-Length {length} is outside the body's {len(body)} bytes")
    return body[:length], body[length:]


def _finite_float32(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.float32:  # binary tensors: nothing to convert (np.errstate costs more than the check)
        values = array
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            values = array.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        # 1e39 parses as a finite double but overflows float32 to infinity: rejected here too.
        raise ProtocolError(
            f"input {name} holds non-finite values (NaN, infinity or beyond float32's range of +-3.4e38)"
        )
    return values


def _json_values(data, name: str, count: int) -> np.ndarray:
    if isinstance(data, list) and data and not isinstance(data[0], list) and len(data) != count:
        # A flat list of the wrong length: said before numpy copies what may be millions of values.
        raise ProtocolError(f"input {name}: data has {len(data)} values; its shape needs {count}")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ProtocolError(f"input {name}: data must be a flat or evenly nested list of numbers") from None
    if array.dtype.kind not in "fiu":
        raise ProtocolError(f"input {name}: data must hold only numbers")
    if array.size != count:
        raise ProtocolError(f"input {name}: data has {array.size} values; its shape needs {count}")
    return array.reshape(-1)


def _binary_values(size, binary: memoryview, offset: int, name: str, count: int) -> np.ndarray:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProtocolError(f"input {name}: binary_data_size must be a non-negative integer, got {size!r}")
    if size != count * FLOAT32_LE.itemsize:
        raise ProtocolError(
            f"input {name}: binary_data_size is {size} bytes; its shape needs "
            f"{count * FLOAT32_LE.itemsize} (FP32, 4 bytes each)"
        )
    if offset + size > len(binary):
        raise ProtocolError(f"input {name}: the body ends before its {size} bytes of binary data")
    return np.frombuffer(binary, dtype=FLOAT32_LE, count=count, offset=offset)


def _checked_shape(entry: dict, model) -> list:
    """The input's shape, [rows, *the model's input shape] with 1 <= rows <= the model's max batch."""
    name, tensor = entry.get("name"), model.input
    if name != tensor.name:
        raise ProtocolError(f"unknown input {name!r}; {model.name} takes one input, {tensor.name!r}")
    if entry.get("datatype") != tensor.datatype:
        raise ProtocolError(
            f"input {name} has datatype {entry.get('datatype')!r}; {model.name} takes {tensor.datatype}"
        )
    shape = entry.get("shape")
    wanted = f"[rows, {', '.join(map(str, tensor.shape))}]"
    if (
        not isinstance(shape, list)
        or len(shape) != len(tensor.shape) + 1
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        or tuple(shape[1:]) != tensor.shape
        or shape[0] < 1
    ):
        raise ProtocolError(f"input {name} has shape {shape}; {model.name} takes {wanted} with rows >= 1")
    if shape[0] > model.max_batch:
        # Triton's rule: a request is one batch, so it may not hold more rows than the model's max.
        raise ProtocolError(
            f"input {name} has {shape[0]} rows; {model.name} takes at most {model.max_batch} "
            "per request (its max batch size): send them in several requests"
        )
    return shape


def _input_values(entry: dict, shape: list, binary: memoryview, offset: int) -> tuple:
    """(float32 values in ``shape``, the offset just past this input's binary bytes)."""
    name, count = entry["name"], math.prod(shape)
    parameters = _object(entry.get("parameters", {}), f"input {name}: parameters")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        values = _binary_values(size, binary, offset, name, count)
        offset += size
    elif "data" in entry:
        values = _json_values(entry["data"], name, count)
    else:
        raise ProtocolError(f"input {name} has neither data nor a binary_data_size parameter")
    return _finite_float32(values, name).reshape(shape), offset


def body_bound(model) -> int:
    """The longest body a request within the model's max batch can need: every value in JSON at up
    to REQUEST_BYTES_PER_VALUE bytes, plus HEADER_ALLOWANCE for the rest. A longer body is refused
    unread: parsed, it would cost the server several times its size in Python objects."""
    return model.max_batch * model.input.size * REQUEST_BYTES_PER_VALUE + HEADER_ALLOWANCE


def answer_bound(model, rows: int, outputs: list) -> int:
    """The most bytes the answer to ``rows`` rows can take: 4 per value in binary, and at most
    JSON_BYTES_PER_VALUE per value in JSON (orjson's shortest float32, a sign, an exponent and a
    comma), plus the JSON around them."""
    total = 1024
    for name, binary in outputs:
        total += 256 + rows * model.output(name).size * (FLOAT32_LE.itemsize if binary else JSON_BYTES_PER_VALUE)
    return total


def _check_answer_size(model, rows: int, outputs: list, limit: int) -> int:
    bound = answer_bound(model, rows, outputs)
    if bound > limit:
        raise ProtocolError(
            f"the answer to {rows} rows could take {bound} bytes, over this server's response limit "
            f"of {limit} bytes: ask for fewer rows, fewer outputs or binary outputs"
        )
    return bound


def parse_cost(body: bytes, header_length) -> int:
    """The most memory parsing ``body`` can take beyond the body itself: its JSON header's values
    as Python objects and arrays (binary tensor bytes are read in place, for nothing)."""
    length = len(body)
    if header_length is not None:
        try:
            length = min(max(int(header_length), 0), len(body))
        except ValueError:
            return 0  # refused before anything is parsed
    if length <= SMALL_JSON:
        return length // 2 * PARSE_BYTES_PER_VALUE + length
    return (body.count(b",", 0, length) + 1) * PARSE_BYTES_PER_VALUE + length


def _requested_outputs(request: dict, model) -> list:
    parameters = _object(request.get("parameters", {}), "parameters")
    all_binary = _flag(parameters, "binary_data_output", False)
    wanted = request.get("outputs")
    if wanted is None or wanted == []:
        return [(name, all_binary) for name in model.output_names]
    if not isinstance(wanted, list):
        raise ProtocolError("outputs must be a list")
    chosen = []
    for entry in wanted:
        name = _object(entry, "each entry of outputs").get("name")
        if not isinstance(name, str) or model.output(name) is None:
            raise ProtocolError(f"unknown output {name!r}; {model.name} has {', '.join(model.output_names)}")
        chosen.append(
            (name, _flag(_object(entry.get("parameters", {}), f"output {name}: parameters"), "binary_data", all_binary))
        )
    return chosen


def parse_infer(body: bytes, header_length, model, max_response: int) -> InferRequest:
    """Check one infer request against ``model`` and return its input batch, or a ProtocolError.
    Everything that bounds the work (rows, the answer's size) is checked before the values are read."""
    header, binary = _split_body(body, header_length)
    if header_length is not None and len(header) == 0:
        # Raw binary request: the whole body is one row of the only input; answers are binary.
        outputs = [(name, True) for name in model.output_names]
        answer = _check_answer_size(model, 1, outputs, max_response)
        values = _binary_values(len(binary), memoryview(binary), 0, model.input.name, model.input.size)
        batch = _finite_float32(values, model.input.name).reshape(1, *model.input.shape)
        return InferRequest(None, batch, outputs, answer)
    request = _object(_loads(header), "the request")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("id must be a string")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise ProtocolError(f"inputs must be a list of one input, {model.input.name!r}")
    entry = _object(inputs[0], "each entry of inputs")
    shape = _checked_shape(entry, model)
    outputs = _requested_outputs(request, model)
    answer = _check_answer_size(model, shape[0], outputs, max_response)
    binary = memoryview(binary)
    batch, used = _input_values(entry, shape, binary, 0)
    if used != len(binary):
        raise ProtocolError(f"the body has {len(binary)} bytes after the JSON header; the inputs use {used}")
    return InferRequest(request_id, batch, outputs, answer)


def _loads(header: bytes):
    """orjson parses a request several times faster than json. It refuses the NaN and Infinity
    literals that Python's json reads; json reads them here, so that such a request is told it
    holds non-finite values rather than that it is malformed. orjson stops at 1024 levels of
    nesting; Python's json would recurse until the interpreter's limit, so a body nested deeper
    never reaches it. orjson also refuses lone surrogate escapes, which json reads: those are
    found and named (see the module's docstring), and so is a body that is not UTF-8 at all
    (json alone would guess UTF-16 or UTF-32)."""
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise ProtocolError(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
        first = exc
    try:
        parsed = json.loads(header.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"the JSON is not UTF-8 text (byte {exc.start} is not UTF-8)") from None
    except (ValueError, RecursionError):
        raise ProtocolError(f"malformed JSON ({first})") from None
    if (where := _first_surrogate(parsed)) is not None:
        raise ProtocolError(
            f"{where} holds a lone surrogate escape (\\ud800-\\udfff), which is not text: strings must be valid UTF-8"
        )
    return parsed


def _first_surrogate(value) -> str | None:
    """Where the first string holding a lone surrogate stands ("id", "inputs[0].name", "a key of
    parameters"), or None. Iterative: the value may be nested up to the parser's own limit."""
    stack = [(value, "the request")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                stack.append((child, key if where == "the request" else f"{where}.{key}"))
                stack.append((key, f"a key of {where}"))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{where}[{i}]")
                for i, child in reversed(list(enumerate(item)))
                if isinstance(child, (str, dict, list))
            )
    return None


def encode_response(model, request: InferRequest, outputs: dict) -> tuple:
    """(body bytes, ASGI headers) for the answer: outputs is ``{name: array}`` (float32, or bool for a
    BOOL output); the model's served version goes in ``model_version``, as Triton answers.

    orjson writes a float32 array in Rust with the shortest digits that give back the same float32,
    about seven times faster than formatting it in Python: a 784-pixel answer in JSON is most of
    what a JSON request costs. (A non-finite value, which JSON cannot spell, becomes null.)"""
    answer = {"model_name": model.name, "model_version": model.version}
    if request.id is not None:
        answer["id"] = request.id
    tensors, chunks = [], []
    for name, binary in request.outputs:
        array = outputs[name]
        declared = model.output(name)  # its shape: a scorer's [batch] answers as [batch, 1]
        tensor = {"name": name, "datatype": declared.datatype, "shape": [len(array), *declared.shape]}
        values = np.ascontiguousarray(array, dtype=OUTPUT_DTYPES[declared.datatype])
        if binary:
            chunk = values.tobytes()
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = values.reshape(-1)
        tensors.append(tensor)
    answer["outputs"] = tensors
    header = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, [(b"content-type", b"application/json")]
    return b"".join([header, *chunks]), [
        (b"content-type", b"application/octet-stream"),
        (HEADER_LENGTH_BYTES, str(len(header)).encode()),
    ]
